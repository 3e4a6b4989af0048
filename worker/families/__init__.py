"""One adapter per model family: what the engine does differently for SD 1.x/2.x, SDXL and Flux."""

from seedgrid.worker.families.base import Family
from seedgrid.worker.families.flux import FLUX
from seedgrid.worker.families.sd import SD
from seedgrid.worker.families.sdxl import SDXL

FAMILIES: dict[str, Family] = {family.name: family for family in (SD, SDXL, FLUX)}


def family_named(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"model: family {name!r} is not one of {', '.join(FAMILIES)}") from None


def family_of(pipeline) -> Family:
    """The family whose pipeline class `pipeline` is."""
    for family in FAMILIES.values():
        if isinstance(pipeline, family.pipeline_class):
            return family
    raise ValueError(f"model: {type(pipeline).__name__} is not a pipeline of a known family")
