"""What `--model` (repeated) and `--models DIR` name: the models a worker serves, found without loading them."""

import logging
import re
from pathlib import Path

from seedgrid.shared import limits as L
from seedgrid.shared.workers import ModelOffer
from seedgrid.worker.model_shelf import ModelSource
from seedgrid.worker.simulated import is_simulated

log = logging.getLogger(__name__)


def model_sources(models: list[str], folder: str | None = None) -> list[ModelSource]:
    """`models` in order, then every diffusers folder and .safetensors file in `folder`, by name. A named model
    that cannot be read stops the worker; one in the folder is skipped with a warning, and the others served."""
    sources = [source_of(spec) for spec in models]
    for entry in folder_entries(folder) if folder else []:
        try:
            sources.append(source_of(entry))
        except Exception as exc:  # a broken or foreign file in a shared folder: whatever the reader raised
            log.warning("--models: skipping %s: %s", entry, (str(exc) or type(exc).__name__).splitlines()[0][:200])
    if not sources:
        raise ValueError("--model: no model to serve (give --model NAME or --models DIR)")
    return sources


def folder_entries(folder: str) -> list[str]:
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise ValueError(f"--models: {folder} is not a folder")
    entries = sorted(
        child
        for child in path.iterdir()
        if (child / "model_index.json").is_file() or (child.is_file() and child.suffix.lower() == ".safetensors")
    )
    if not entries:
        raise ValueError(f"--models: {folder} holds no diffusers folder (with model_index.json) or .safetensors file")
    return [str(entry) for entry in entries]


def source_of(spec: str) -> ModelSource:
    if is_simulated(spec):
        return ModelSource(spec, spec, ModelOffer(name=spec, schedulers=list(L.SCHEDULER_NAMES)))
    from seedgrid.worker.families import family_named
    from seedgrid.worker.models.detect import detect_family
    from seedgrid.worker.models.loading import BUILT_IN_FAMILIES, model_display_name

    name = model_display_name(spec)
    if not re.fullmatch(L.MODEL_NAME_PATTERN, name) or len(name) > L.MAX_MODEL_NAME_CHARS:
        raise ValueError(f"model: {name!r} cannot be asked for by name (allowed: {L.FIELD_RULES['model']}); rename it")
    built_in = BUILT_IN_FAMILIES.get(spec)
    family = family_named(built_in or detect_family(spec))
    width, height = family.default_size
    # (the built-in tiny models are made in code: nothing to read, and tiny-flux is dev-like)
    steps, guidance = (
        (family.default_steps(None), family.default_guidance(None)) if built_in else family.unloaded_defaults(spec)
    )
    offer = ModelOffer(
        name=name,
        schedulers=list(family.schedulers),
        family=family.name,
        default_width=width,
        default_height=height,
        default_steps=steps,
        default_guidance=guidance,
        negative_prompt=family.negative_prompt,
        size_multiple=family.size_multiple,
        loaded=False,
    )
    return ModelSource(name, spec, offer, size_on_disk(spec))


def size_on_disk(spec: str) -> int:
    """The bytes of a model's weights on disk: a file's, or a folder's .safetensors files (0 for other specs)."""
    path = Path(spec).expanduser()
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(weights.stat().st_size for weights in path.rglob("*.safetensors"))
    return 0
