"""Plot axes as people type them: `steps=10-40:10`, `scheduler=euler_a,dpm++_2m`, `sr=red,blue`.

An axis is one setting and its values. Values are comma-separated (double quotes keep a comma in
a value); steps and guidance take ranges `FROM-TO[:STEP]`, seeds anything `--seeds` takes, size
`WIDTHxHEIGHT`. `sr` is A1111's Prompt S/R: the first value is searched in the prompt (and the
negative prompt) and replaced by each value in turn, the first cell keeping it.
"""

import csv
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from seedgrid.shared import limits as L
from seedgrid.shared.lora_syntax import lora_from_spec
from seedgrid.shared.request import LoraRef, RequestError
from seedgrid.shared.seeds import parse_seeds

MAX_AXIS_VALUES = 1024
# setting -> what its values look like, for the help and the unknown-setting message
SETTINGS = {
    "seed": "seeds: 0-7, 3,17,42, random:8",
    "sr": "prompt search/replace: the first value is replaced by each value in turn",
    "negative": "negative prompts",
    "steps": "integers, or a range 10-40:10",
    "guidance": "numbers, or a range 3-9:1.5",
    "scheduler": ", ".join(L.SCHEDULER_NAMES),
    "size": "WIDTHxHEIGHT: 512x512,768x512",
    "model": "model names online workers serve",
    "lora": "NAME:WEIGHT, the LoRA set to each weight (none: without it): detail:0,detail:0.5,detail:1",
}
ALIASES = {
    "seeds": "seed",
    "prompt": "sr",
    "prompt_sr": "sr",
    "negative_prompt": "negative",
    "cfg": "guidance",
    "sampler": "scheduler",
    "checkpoint": "model",
    "loras": "lora",
    "lora_weight": "lora",
}
NOT_PER_JOB = {"vae": "a worker's VAE (seedgrid worker --vae) is not a job setting; plot over models instead"}
RANGE = re.compile(r"(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)(?:\s*:\s*(\d+(?:\.\d+)?))?")
SIZE = re.compile(r"(\d{1,6})\s*[xX]\s*(\d{1,6})")


@dataclass(frozen=True)
class Axis:
    """One axis of a plot: a setting and its values (size values are (width, height))."""

    setting: str
    values: tuple[Any, ...]

    def labels(self) -> list[str]:
        return [value_label(self.setting, v) for v in self.values]

    def json_values(self) -> list[Any]:
        """The values as JSON takes them (sizes as [w, h], LoRAs as {name, weight}); Axis.from_json reads them."""
        if self.setting == "lora":
            return [{"name": v.name, "weight": v.weight} for v in self.values]
        return [list(v) if self.setting == "size" else v for v in self.values]

    @classmethod
    def from_json(cls, setting: str, values: list[Any]) -> "Axis":
        """The axis `json_values` wrote; a ValueError if the values are not of the setting's kind."""
        if setting not in SETTINGS or not isinstance(values, list) or not values:
            raise ValueError(f"not a plot axis: {setting!r}")
        if setting == "size":
            return cls(setting, tuple((int(w), int(h)) for w, h in values))
        if setting == "lora":
            return cls(setting, tuple(_lora_value(v) for v in values))
        return cls(setting, tuple(values))


def value_label(setting: str, value: Any) -> str:
    if setting == "size":
        return f"{value[0]}x{value[1]}"
    if setting == "guidance":
        return f"{value:g}"
    if setting == "negative" and value == "":
        return "(none)"
    if setting == "lora":
        return "(none)" if value.weight == 0 and value.name == "" else f"{value.name}:{value.weight:g}"
    return str(value)


def _split(text: str) -> list[str]:
    return [v.strip() for v in next(csv.reader([text], skipinitialspace=True), [])]


def _range(part: str, label: str, integer: bool) -> list[Decimal]:
    """`10-40:10` -> 10, 20, 30, 40 (the end kept when the step reaches it); `40-10:10` counts down."""
    match = RANGE.fullmatch(part)
    if not match:
        try:
            return [Decimal(part)]
        except InvalidOperation:
            kind = "an integer" if integer else "a number"
            raise RequestError("axis", f"{part!r} is not {kind} or a range FROM-TO:STEP", label) from None
    start, end = Decimal(match[1]), Decimal(match[2])
    step = Decimal(match[3] or 1)
    if step <= 0:
        raise RequestError("axis", f"range {part!r} has a step of 0", label)
    count = int(abs(end - start) / step) + 1
    if count > MAX_AXIS_VALUES:
        raise RequestError("axis", f"range {part!r} holds {count} values (at most {MAX_AXIS_VALUES})", label)
    sign = 1 if end >= start else -1
    return [start + sign * i * step for i in range(count)]


def _numbers(text: str, label: str, integer: bool) -> list[Any]:
    values: list[Any] = []
    for part in _split(text):
        for number in _range(part, label, integer):
            if integer and number != number.to_integral_value():
                raise RequestError("axis", f"{number} is not a whole number", label)
            values.append(int(number) if integer else float(number))
    return values


def _sizes(text: str, label: str) -> list[tuple[int, int]]:
    sizes = []
    for part in _split(text):
        match = SIZE.fullmatch(part)
        if not match:
            raise RequestError("axis", f"{part!r} is not WIDTHxHEIGHT (like 512x768)", label)
        sizes.append((int(match[1]), int(match[2])))
    return sizes


def _lora(part: str, label: str) -> LoraRef:
    """`NAME:WEIGHT`, `NAME` (weight 1), or `none`: the empty name, the job without the axis's LoRAs."""
    if part.lower() == "none":
        return LoraRef.model_construct(name="", weight=0.0)
    try:
        return lora_from_spec(part)
    except RequestError as exc:
        raise RequestError("axis", exc.problem, label) from None


def _lora_value(value: Any) -> LoraRef:
    if not isinstance(value, dict):
        raise ValueError(f"not a LoRA: {value!r}")
    if value.get("name") == "":
        return LoraRef.model_construct(name="", weight=0.0)  # `none`, as _lora makes it
    return LoraRef.model_validate(value)


def setting_name(name: str, label: str) -> str:
    key = name.strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key in SETTINGS:
        return key
    if key in NOT_PER_JOB:
        raise RequestError("axis", NOT_PER_JOB[key], label)
    raise RequestError("axis", f"unknown setting {name[:40]!r}; known: {', '.join(SETTINGS)}", label)


def parse_axis(spec: str, label: str = "x") -> Axis:
    """`NAME=V1,V2,...` -> Axis, or a RequestError whose message starts with `label` (like `--x`)."""
    name, eq, text = spec.partition("=")
    if not eq:
        raise RequestError("axis", f"{spec[:40]!r} is not SETTING=VALUES (like steps=10,20,30)", label)
    setting = setting_name(name, label)
    label = f"{label} {setting}"
    if not text.strip():
        raise RequestError("axis", "has no values", label)
    values: list[Any]
    if setting == "seed" and text.strip().lower().startswith("random:"):
        try:
            values = parse_seeds(text)
        except RequestError as exc:
            raise RequestError("axis", exc.problem, label) from None
    elif setting in ("seed", "steps", "guidance"):
        values = _numbers(text, label, integer=setting != "guidance")
    elif setting == "size":
        values = _sizes(text, label)
    elif setting == "lora":
        values = [_lora(part, label) for part in _split(text)]
    else:
        values = _split(text)
    if len(values) > MAX_AXIS_VALUES:
        raise RequestError("axis", f"has {len(values)} values (at most {MAX_AXIS_VALUES})", label)
    if setting == "sr" and not values[0]:
        raise RequestError("axis", "the first value (the text to replace) is empty", label)
    return Axis(setting, tuple(values))
