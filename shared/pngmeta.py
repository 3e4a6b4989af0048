"""PNG files that carry the parameters that made them, readable by A1111-style tools."""

import io
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo
from pydantic import ValidationError

from seedgrid.shared import limits as L
from seedgrid.shared.lora_syntax import lift_lora_tags, with_lora_tags
from seedgrid.shared.request import Item, JobRequest, RequestError, parse_request

PARAMETERS_KEY = "parameters"
SEEDGRID_KEY = "seedgrid"
FORMAT_VERSION = 1
NEGATIVE_PREFIX = "Negative prompt:"
KARRAS_SCHEDULER = "dpm++_2m_karras"
# Families whose guidance is distilled into the model: Forge writes it apart, with "CFG scale: 1" (no true CFG).
DISTILLED_GUIDANCE_FAMILIES = {"flux"}
DISTILLED_KEY = "Distilled CFG Scale"
MODEL_HASH_KEY = "Model hash"
LORA_HASHES_KEY = "Lora hashes"
# Keys of the seedgrid chunk that encode_png writes itself; `extra` may not use them.
RESERVED_KEYS = ("version", "request", "item", "model_hash", "lora_hashes")
SCHEDULERS_BY_LABEL = {label: name for name, label in L.SCHEDULER_LABELS.items()}
_PARAM_KEY = re.compile(r"\w[\w \-/]*")
_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{1,64}")


@dataclass(frozen=True)
class PngMetadata:
    request: JobRequest | None
    item: Item | None
    parameters: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    model_hash: str = ""  # A1111's short hash of the checkpoint file, "" when unknown
    lora_hashes: dict[str, str] = field(default_factory=dict)  # LoRA name -> A1111's short hash


def _quote(value: str) -> str:
    """Quote a value the way A1111 does when it would break the comma-separated line."""
    return json.dumps(value, ensure_ascii=False) if any(c in value for c in ",:\n") else value


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def parameters_text(
    request: JobRequest,
    item: Item,
    model_label: str | None = None,
    family: str = "sd",
    model_hash: str = "",
    lora_hashes: dict[str, str] | None = None,
) -> str:
    """The A1111 `parameters` text of one image, as its "copy parameters" gives it (Forge's for Flux).

    The LoRAs are `<lora:NAME:WEIGHT>` tags after the prompt; hashes are written when given."""
    lines = [with_lora_tags(item.prompt, request.loras)]
    if request.negative_prompt:
        lines.append(f"{NEGATIVE_PREFIX} {request.negative_prompt}")
    if request.scheduler == KARRAS_SCHEDULER:
        sampler = f"{L.SCHEDULER_LABELS['dpm++_2m']}, Schedule type: Karras"
    else:
        sampler = L.SCHEDULER_LABELS[request.scheduler]
    if family in DISTILLED_GUIDANCE_FAMILIES:
        guidance = f"CFG scale: 1, {DISTILLED_KEY}: {_number(request.guidance)}"
    else:
        guidance = f"CFG scale: {_number(request.guidance)}"
    settings = [f"Steps: {request.steps}", f"Sampler: {sampler}", guidance, f"Seed: {item.seed}"]
    settings.append(f"Size: {request.width}x{request.height}")
    if model_hash:
        settings.append(f"{MODEL_HASH_KEY}: {model_hash}")
    settings.append(f"Model: {_quote(model_label or request.model)}")
    known = lora_hashes or {}
    hashes = [f"{lora.name}: {known[lora.name]}" for lora in request.loras if lora.name in known]
    if hashes:
        settings.append(f"{LORA_HASHES_KEY}: {_quote(', '.join(hashes))}")
    lines.append(", ".join(settings))
    return "\n".join(lines)


def encode_png(
    image: Image.Image,
    request: JobRequest,
    item: Item,
    model_label: str | None = None,
    extra: dict | None = None,
    family: str = "sd",
    model_hash: str = "",
    lora_hashes: dict[str, str] | None = None,
) -> bytes:
    """PNG bytes of `image` with the A1111 `parameters` text (in `family`'s conventions) and a `seedgrid` JSON chunk.

    `model_hash` and `lora_hashes` (LoRA name -> hash): model_hash.py's short hashes of the files used."""
    payload = {
        "version": FORMAT_VERSION,
        "request": request.model_dump(mode="json"),
        "item": item.model_dump(),
        "model_hash": model_hash,
        "lora_hashes": dict(lora_hashes or {}),
    }
    clashes = set(extra or {}) & set(RESERVED_KEYS)
    if clashes:
        raise ValueError(f"extra: keys {sorted(clashes)} are reserved")
    payload.update(extra or {})
    info = PngInfo()
    parameters = parameters_text(request, item, model_label, family, model_hash, lora_hashes)
    info.add_text(PARAMETERS_KEY, parameters)  # iTXt when not latin-1
    info.add_text(SEEDGRID_KEY, json.dumps(payload))
    out = io.BytesIO()
    image.save(out, format="PNG", pnginfo=info, compress_level=1)
    return out.getvalue()


def _split_params(line: str) -> dict[str, str]:
    """`Key: value, Key: "quoted, value", ...` -> {key: value}; chunks without a valid key are skipped."""
    params: dict[str, str] = {}
    pos = 0
    while pos < len(line):
        colon = line.find(":", pos)
        if colon < 0:
            break
        key = line[pos:colon].strip()
        start = colon + 1
        while start < len(line) and line[start] == " ":
            start += 1
        value, end = None, -1
        if line.startswith('"', start):
            try:
                value, end = json.JSONDecoder().raw_decode(line, start)
            except ValueError:
                value = None
            if isinstance(value, str):
                end = line.find(",", end)
            else:
                value = None
        if value is None:
            end = line.find(",", start)
            value = line[start : end if end >= 0 else len(line)].strip()
        if _PARAM_KEY.fullmatch(key):
            params[key] = value
        pos = end + 1 if end >= 0 else len(line)
    return params


def _int_param(params: dict[str, str], key: str) -> int:
    try:
        return int(params[key])
    except ValueError:
        raise RequestError(PARAMETERS_KEY, f"{key} {params[key][:40]!r} is not an integer") from None


def _scheduler_from(params: dict[str, str]) -> str | None:
    name = SCHEDULERS_BY_LABEL.get(params.get("Sampler", ""))
    if name == "dpm++_2m" and params.get("Schedule type", "").lower() == "karras":
        return KARRAS_SCHEDULER
    return name


def _split_parameters(text: str) -> tuple[list[str], dict[str, str]]:
    """The prompt and negative prompt lines, and the settings line's `Key: value` pairs."""
    *lines, last = text.strip().splitlines() or [""]
    params = _split_params(last)
    if len(params) < 3:  # A1111's rule: a shorter last line is still part of the prompt
        lines.append(last)
        params = {}
    return lines, params


def hashes_from_parameters(text: str) -> tuple[str, dict[str, str]]:
    """`Model hash` and `Lora hashes` (name -> hash) of A1111 `parameters` text; what is not hex is skipped."""
    params = _split_parameters(text)[1]
    model_hash = params.get(MODEL_HASH_KEY, "")
    lora_hashes = {}
    for entry in params.get(LORA_HASHES_KEY, "").split(","):
        name, _, short_hash = entry.partition(":")
        if name.strip() and _HEX_DIGEST.fullmatch(short_hash.strip()):
            lora_hashes[name.strip()] = short_hash.strip()
    return (model_hash if _HEX_DIGEST.fullmatch(model_hash) else ""), lora_hashes


def request_from_parameters(text: str) -> JobRequest:
    """Rebuild the settings of one image from A1111 `parameters` text (unknown keys ignored).

    The prompt's `<lora:NAME:WEIGHT>` tags become the request's LoRAs."""
    lines, params = _split_parameters(text)
    prompt: list[str] = []
    negative: list[str] = []
    in_negative = False
    for line in lines:
        if line.startswith(NEGATIVE_PREFIX):
            in_negative, line = True, line[len(NEGATIVE_PREFIX) :].strip()
        (negative if in_negative else prompt).append(line)
    data: dict[str, Any] = {"prompts": ["\n".join(prompt)], "negative_prompt": "\n".join(negative)}
    if "Seed" not in params:
        raise RequestError(PARAMETERS_KEY, "has no Seed")
    data["seeds"] = [_int_param(params, "Seed")]
    if "Steps" in params:
        data["steps"] = _int_param(params, "Steps")
    guidance_key = DISTILLED_KEY if DISTILLED_KEY in params else "CFG scale"  # Flux's guidance is the distilled one
    if guidance_key in params:
        try:
            data["guidance"] = float(params[guidance_key])
        except ValueError:
            raise RequestError("guidance", f"{guidance_key} {params[guidance_key][:40]!r} is not a number") from None
    if "Size" in params:
        size = re.fullmatch(r"\s*(\d{1,6})\s*x\s*(\d{1,6})\s*", params["Size"])
        if not size:
            raise RequestError(PARAMETERS_KEY, f"Size {params['Size'][:40]!r} is not WIDTHxHEIGHT")
        data["width"], data["height"] = int(size[1]), int(size[2])
    scheduler = _scheduler_from(params)
    if scheduler:
        data["scheduler"] = scheduler
    model = params.get("Model", "")
    if model and len(model) <= L.MAX_MODEL_NAME_CHARS and re.match(L.MODEL_NAME_PATTERN, model) and ".." not in model:
        data["model"] = model  # other tools' display names (spaces etc.) keep the default model
    return parse_request(lift_lora_tags(data))


def _from_seedgrid_chunk(text: str, parameters: str) -> PngMetadata:
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise RequestError(SEEDGRID_KEY, f"is not valid JSON ({exc})") from None
    if not isinstance(payload, dict):
        raise RequestError(SEEDGRID_KEY, "is not a JSON object")
    if payload.get("version") != FORMAT_VERSION:
        raise RequestError(SEEDGRID_KEY, f"version {str(payload.get('version'))[:20]!r} is not {FORMAT_VERSION}")
    request = parse_request(payload.get("request"))
    item = None
    if payload.get("item") is not None:
        try:
            item = Item.model_validate(payload["item"])
        except ValidationError as exc:
            raise RequestError("item", exc.errors()[0].get("msg", "invalid")) from None
        if item not in request.items():
            raise RequestError("item", f"image {item.index} is not one of the request's images")
    extra = {k: v for k, v in payload.items() if k not in RESERVED_KEYS}
    model_hash, lora_hashes = _recorded_hashes(payload)
    return PngMetadata(request, item, parameters, extra, model_hash, lora_hashes)


def _recorded_hashes(payload: dict) -> tuple[str, dict[str, str]]:
    """The seedgrid chunk's `model_hash` and `lora_hashes`; absent (older PNGs) they are empty."""
    model_hash = payload.get("model_hash", "")
    if not isinstance(model_hash, str) or (model_hash and not _HEX_DIGEST.fullmatch(model_hash)):
        raise RequestError("model_hash", "is not a hex digest (1-64 hex digits)")
    lora_hashes = payload.get("lora_hashes", {})
    if not isinstance(lora_hashes, dict) or not all(
        isinstance(h, str) and _HEX_DIGEST.fullmatch(h) for h in lora_hashes.values()
    ):
        raise RequestError("lora_hashes", "is not an object of LoRA names to hex digests")
    return model_hash, lora_hashes


def read_png_metadata(data: bytes | str | os.PathLike) -> PngMetadata:
    """The request and item a PNG was made from; request is None for a PNG without metadata."""
    if not isinstance(data, (bytes, bytearray)):
        with open(data, "rb") as f:
            data = f.read()
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "PNG":
                raise RequestError("png", f"is a {image.format} image, not a PNG")
            info = dict(image.info)
    except RequestError:
        raise
    except Exception as exc:  # Pillow reports broken files with many exception types
        raise RequestError("png", f"cannot be read ({type(exc).__name__}: {exc})") from None
    parameters = info.get(PARAMETERS_KEY, "")
    parameters = parameters if isinstance(parameters, str) else ""
    seedgrid = info.get(SEEDGRID_KEY)
    if isinstance(seedgrid, str):
        return _from_seedgrid_chunk(seedgrid, parameters)
    if not parameters.strip():
        return PngMetadata(request=None, item=None, parameters=parameters)
    request = request_from_parameters(parameters)
    model_hash, lora_hashes = hashes_from_parameters(parameters)
    return PngMetadata(request, request.items()[0], parameters, {}, model_hash, lora_hashes)
