"""The request's JSON Schema, for tools that submit jobs without the Python client.

`python -m seedgrid.shared.schema > docs/request.schema.json` writes it again after JobRequest or
its limits change (tests/test_contract.py fails until it is).
"""

import json

from seedgrid.shared import limits as L
from seedgrid.shared.request import JobRequest

SCHEMA_FILE = "docs/request.schema.json"
REGENERATE = f"python -m seedgrid.shared.schema > {SCHEMA_FILE}"

_SIZE = {"minimum": L.MIN_SIZE, "maximum": L.MAX_SIZE, "multipleOf": L.SIZE_MULTIPLE}

# JobRequest's validators in JSON Schema words; what a schema cannot say (at most MAX_ITEMS prompts x
# seeds, no lone surrogates) is in the descriptions.
BOUNDS: dict[str, dict] = {
    "model": {
        "minLength": 1,
        "maxLength": L.MAX_MODEL_NAME_CHARS,
        "pattern": L.MODEL_NAME_PATTERN,
        "not": {"pattern": r"\.\."},
    },
    "prompts": {
        "minItems": 1,
        "maxItems": L.MAX_PROMPTS,
        "items": {"type": "string", "minLength": 1, "maxLength": L.MAX_PROMPT_CHARS, "pattern": r"\S"},
    },
    "seeds": {
        "minItems": 1,
        "maxItems": L.MAX_SEEDS,
        "items": {"type": "integer", "minimum": L.MIN_SEED, "maximum": L.MAX_SEED},
    },
    "negative_prompt": {"maxLength": L.MAX_PROMPT_CHARS},
    "width": _SIZE,
    "height": _SIZE,
    "steps": {"minimum": L.MIN_STEPS, "maximum": L.MAX_STEPS},
    "guidance": {"minimum": L.MIN_GUIDANCE, "maximum": L.MAX_GUIDANCE},
    "scheduler": {"enum": list(L.SCHEDULER_NAMES)},
    "loras": {"maxItems": L.MAX_LORAS},
}
LORA_BOUNDS: dict[str, dict] = {
    "name": {"minLength": 1, "maxLength": L.MAX_LORA_NAME_CHARS, "pattern": L.LORA_NAME_PATTERN},
    "weight": {"minimum": L.MIN_LORA_WEIGHT, "maximum": L.MAX_LORA_WEIGHT},
}


def request_schema() -> dict:
    """JobRequest.model_json_schema() with the bounds its validators check."""
    schema = JobRequest.model_json_schema()
    properties = schema["properties"]
    if set(properties) != set(BOUNDS):
        raise RuntimeError(f"shared/schema.py BOUNDS and JobRequest's fields differ: {set(properties) ^ set(BOUNDS)}")
    for name, prop in properties.items():
        prop.update(BOUNDS[name])
        prop["description"] = L.FIELD_RULES[name]
    for name, prop in schema["$defs"]["LoraRef"]["properties"].items():
        prop.update(LORA_BOUNDS[name])
    schema["description"] += (
        f" At most {L.MAX_ITEMS} images (prompts x seeds) per job; text must be valid UTF-8 (no lone surrogates);"
        " no LoRA name twice."
    )
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def schema_text() -> str:
    return json.dumps(request_schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(schema_text(), end="")
