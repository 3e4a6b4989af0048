"""A1111's `<lora:NAME:WEIGHT>` prompt tags <-> a request's `loras`."""

import math
import re
from typing import Any

from seedgrid.shared.request import LoraRef, RequestError, number_text

# Any `<lora:...>` tag; its inside is checked apart, so a malformed one is refused rather than left in the prompt.
LORA_TAG = re.compile(r"<lora:([^<>]*)>")
_PROMPTS_FIELD = "prompts"
_BLANKS = " \t"


def lora_from_spec(spec: str) -> LoraRef:
    """`NAME` (weight 1) or `NAME:WEIGHT` -> a LoRA; its name and weight are checked when the request is parsed."""
    name, colon, weight_text = spec.partition(":")
    try:
        weight = float(weight_text) if colon else 1.0
    except ValueError:
        raise RequestError("loras", f"{spec[:60]!r} is not NAME or NAME:WEIGHT (a number)") from None
    return LoraRef.model_construct(name=name.strip(), weight=weight)


def _lora_of_tag(inside: str) -> LoraRef:
    try:
        return lora_from_spec(inside)
    except RequestError:
        raise RequestError("loras", f"<lora:{inside[:60]}> is not <lora:NAME> or <lora:NAME:WEIGHT>") from None


def _joined(left: str, right: str, spaced: bool) -> str:
    """`left` and `right` around a removed tag, without the comma or spaces the tag leaves doubled."""
    left, right = left.rstrip(_BLANKS), right.lstrip(_BLANKS)
    if right.startswith(",") and (left.endswith(",") or not left or left.endswith("\n")):
        right = right[1:].lstrip(_BLANKS)
    if left.endswith(",") and (not right or right.startswith("\n")):
        left = left[:-1].rstrip(_BLANKS)
    gap = " " if spaced and left and right and not left.endswith("\n") and not right.startswith("\n") else ""
    return left + gap + right


def split_lora_tags(prompt: str) -> tuple[str, list[LoraRef]]:
    """The prompt without its `<lora:...>` tags, and the LoRAs they name in order, each once.

    The LoRAs are not validated yet (parse_request does); a name given two weights is refused."""
    pieces = LORA_TAG.split(prompt)
    text = pieces[0]
    loras: dict[str, LoraRef] = {}
    for inside, after in zip(pieces[1::2], pieces[2::2], strict=True):
        spaced = text[-1:].isspace() or after[:1].isspace()
        text = _joined(text, after, spaced)
        lora = _lora_of_tag(inside)
        _add(loras, lora)
    return text, list(loras.values())


def _add(loras: dict[str, LoraRef], lora: LoraRef) -> None:
    known = loras.setdefault(lora.name, lora)
    if known.weight != lora.weight and not (math.isnan(known.weight) and math.isnan(lora.weight)):
        raise RequestError(
            "loras",
            f"{lora.name[:40]!r} has two weights, {number_text(known.weight)} and {number_text(lora.weight)}",
        )


def lift_lora_tags(data: Any) -> Any:
    """Request data with the `<lora:...>` tags of its prompts moved into `loras`, as A1111 reads them.

    Only the prompts' tags count (A1111 leaves the negative prompt's alone); they join the explicit
    `loras`. Data that is not a request's shape is returned as is, for parse_request to refuse."""
    if not isinstance(data, dict) or not isinstance(data.get(_PROMPTS_FIELD), list):
        return data
    explicit = data.get("loras", [])
    if not isinstance(explicit, list):
        return data
    loras: dict[str, LoraRef] = {}
    for entry in explicit:
        if isinstance(entry, LoraRef):
            _add(loras, entry)
        elif isinstance(entry, dict) and isinstance(entry.get("name"), str) and _is_number(entry.get("weight")):
            _add(loras, LoraRef.model_construct(name=entry["name"], weight=float(entry["weight"])))
    lifted: list[dict[str, Any]] = []
    prompts = []
    for number, prompt in enumerate(data[_PROMPTS_FIELD], start=1):
        text, found = split_lora_tags(prompt) if isinstance(prompt, str) else (prompt, [])
        if found and not text.strip():
            raise RequestError(_PROMPTS_FIELD, f"prompt {number} is only <lora:...> tags")
        for lora in found:
            if lora.name not in loras:
                lifted.append(lora.model_dump())
            _add(loras, lora)
        prompts.append(text)
    if not lifted:
        return {**data, _PROMPTS_FIELD: prompts}
    return {**data, _PROMPTS_FIELD: prompts, "loras": [*explicit, *lifted]}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def with_lora_tags(prompt: str, loras: list[LoraRef]) -> str:
    """The prompt as A1111 writes it for these LoRAs: ` <lora:NAME:WEIGHT>` after it for each."""
    return prompt + "".join(f" <lora:{lora.name}:{number_text(lora.weight)}>" for lora in loras)
