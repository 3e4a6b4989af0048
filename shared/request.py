"""A job request: prompts x seeds plus the settings they share."""

import hashlib
import math
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from seedgrid.shared import limits as L


class RequestError(ValueError):
    """A request broke a bound; the message names the field and its allowed range."""

    def __init__(self, field: str, problem: str, label: str | None = None, rule: str | None = None):
        """`rule`: the allowed range when it is narrower than the contract's (a model family's); "" for none."""
        self.field = field
        self.problem = problem
        rule = L.FIELD_RULES.get(field) if rule is None else rule
        super().__init__(f"{label or field}: {problem}" + (f" (allowed: {rule})" if rule else ""))


def _is_utf8(text: str) -> bool:
    """JSON may carry lone surrogates ("\\ud800") that no PNG chunk or JSON dump can encode."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Item(BaseModel):
    """One image of a job: its position in the grid, its prompt and its seed."""

    model_config = ConfigDict(frozen=True)
    index: int
    row: int
    col: int
    prompt: str
    seed: int
    negative_prompt: str = ""


def number_text(value: float) -> str:
    """1 -> "1", 0.6 -> "0.6": how weights read in messages and tags."""
    return str(int(value)) if math.isfinite(value) and float(value).is_integer() else repr(float(value))


class LoraRef(BaseModel):
    """A LoRA applied to every image of a job: its name (a file stem on the worker) and its weight."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    name: str
    weight: float

    @model_validator(mode="after")
    def _bounds(self) -> "LoraRef":
        if not re.fullmatch(L.LORA_NAME_PATTERN, self.name):
            raise ValueError(f"{self.name[:40]!r} is not a valid LoRA name")
        if not math.isfinite(self.weight) or not (L.MIN_LORA_WEIGHT <= self.weight <= L.MAX_LORA_WEIGHT):
            raise ValueError(f"weight {number_text(self.weight)} of {self.name!r} is out of range")
        return self


class JobRequest(BaseModel):
    """Everything that decides a job's images; extra fields are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    model: str = "tiny"
    prompts: list[str]
    seeds: list[int]
    negative_prompt: str = ""
    width: int = 512
    height: int = 512
    steps: int = 20
    guidance: float = 7.5
    scheduler: str = "dpm++_2m"
    loras: list[LoraRef] = []

    @field_validator("model")
    @classmethod
    def _model(cls, v: str) -> str:
        if not (0 < len(v) <= L.MAX_MODEL_NAME_CHARS) or not re.fullmatch(L.MODEL_NAME_PATTERN, v) or ".." in v:
            raise ValueError(f"{v[:40]!r} is not a valid model name")
        return v

    @field_validator("prompts")
    @classmethod
    def _prompts(cls, v: list[str]) -> list[str]:
        if not (1 <= len(v) <= L.MAX_PROMPTS):
            raise ValueError(f"got {len(v)} prompts")
        for i, p in enumerate(v):
            if not p.strip():
                raise ValueError(f"prompt {i + 1} is empty")
            if len(p) > L.MAX_PROMPT_CHARS:
                raise ValueError(f"prompt {i + 1} has {len(p)} characters")
            if not _is_utf8(p):
                raise ValueError(f"prompt {i + 1} is not valid text (a lone surrogate)")
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if not (1 <= len(v) <= L.MAX_SEEDS):
            raise ValueError(f"got {len(v)} seeds")
        for s in v:
            if not (L.MIN_SEED <= s <= L.MAX_SEED):
                raise ValueError(f"seed {s} is out of range")
        return v

    @field_validator("negative_prompt")
    @classmethod
    def _negative(cls, v: str) -> str:
        if len(v) > L.MAX_PROMPT_CHARS:
            raise ValueError(f"has {len(v)} characters")
        if not _is_utf8(v):
            raise ValueError("is not valid text (a lone surrogate)")
        return v

    @field_validator("width", "height")
    @classmethod
    def _size(cls, v: int) -> int:
        if not (L.MIN_SIZE <= v <= L.MAX_SIZE) or v % L.SIZE_MULTIPLE:
            raise ValueError(f"got {v}")
        return v

    @field_validator("steps")
    @classmethod
    def _steps(cls, v: int) -> int:
        if not (L.MIN_STEPS <= v <= L.MAX_STEPS):
            raise ValueError(f"got {v}")
        return v

    @field_validator("guidance")
    @classmethod
    def _guidance(cls, v: float) -> float:
        if not math.isfinite(v) or not (L.MIN_GUIDANCE <= v <= L.MAX_GUIDANCE):
            raise ValueError(f"got {v}")
        return v

    @field_validator("scheduler")
    @classmethod
    def _scheduler(cls, v: str) -> str:
        if v not in L.SCHEDULER_NAMES:
            raise ValueError(f"unknown scheduler {v[:40]!r}")
        return v

    @field_validator("loras")
    @classmethod
    def _loras(cls, v: list[LoraRef]) -> list[LoraRef]:
        if len(v) > L.MAX_LORAS:
            raise ValueError(f"got {len(v)} LoRAs")
        seen: set[str] = set()
        for lora in v:
            if lora.name in seen:
                raise ValueError(f"{lora.name!r} is listed twice")
            seen.add(lora.name)
        return v

    @model_validator(mode="after")
    def _items(self) -> "JobRequest":
        n = len(self.prompts) * len(self.seeds)
        if n > L.MAX_ITEMS:
            raise ValueError(f"items: {len(self.prompts)} prompts x {len(self.seeds)} seeds make {n} images")
        return self

    def items(self) -> list[Item]:
        """Prompts are rows and seeds are columns, indexed row by row."""
        return [
            Item(index=r * len(self.seeds) + c, row=r, col=c, prompt=p, seed=s, negative_prompt=self.negative_prompt)
            for r, p in enumerate(self.prompts)
            for c, s in enumerate(self.seeds)
        ]

    def batch_key(self) -> str:
        """Jobs with equal keys can share one GPU batch: all settings but prompts, seeds and negative prompt.

        LoRAs, in name order, extend the key only when there are some: a request without keeps its old key."""
        shared = f"{self.model}|{self.width}x{self.height}|{self.steps}|{self.scheduler}|{float(self.guidance)!r}"
        for lora in sorted(self.loras, key=lambda lora: lora.name):
            shared += f"|{lora.name}:{float(lora.weight)!r}"
        return hashlib.sha256(shared.encode()).hexdigest()[:20]


def parse_request(data: Any) -> JobRequest:
    """Validate untrusted data into a JobRequest, or raise one RequestError naming the field."""
    if isinstance(data, JobRequest):
        data = data.model_dump()
    if not isinstance(data, dict):
        raise RequestError("request", f"expected an object, got {type(data).__name__}")
    try:
        return JobRequest.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(part) for part in err.get("loc", ())]
        msg = err.get("msg", "invalid").removeprefix("Value error, ")
        if not loc and msg.startswith("items: "):
            raise RequestError("items", msg.removeprefix("items: ")) from None
        field = loc[0] if loc else "request"
        if field == "loras" and len(loc) > 1:
            raise RequestError(field, _lora_problem(err, loc)) from None
        if err.get("type") == "extra_forbidden":
            raise RequestError(field, "is not a request field") from None
        if err.get("type") == "missing":
            raise RequestError(field, "is required") from None
        raise RequestError(field, msg) from None


def _lora_problem(err: Any, loc: list[str]) -> str:
    """The problem of one entry of `loras`, which the entry's own validator may have worded."""
    where = f"LoRA {int(loc[1]) + 1}"
    msg = err.get("msg", "invalid").removeprefix("Value error, ")
    kind = err.get("type")
    if kind == "model_type":
        return f"{where} is not an object with a name and a weight"
    if kind == "extra_forbidden":
        return f"{where}: {loc[-1][:40]!r} is not a LoRA field (name, weight)"
    if kind == "missing":
        return f"{where} has no {loc[-1]}"
    return msg if len(loc) == 2 else f"{where} {loc[2]}: {msg}"
