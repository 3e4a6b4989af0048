"""What a model family refuses that the contract allows, checked by the client before queueing and by the worker."""

from seedgrid.shared import limits as L
from seedgrid.shared.request import JobRequest, RequestError

FAMILY_LABELS = {"sd": "Stable Diffusion", "sdxl": "SDXL", "flux": "Flux"}


def check_family(request: JobRequest, family: str, negative_prompt: bool = True, size_multiple: int = 8) -> None:
    """Refuse, naming the field, what a model of `family` cannot take (as its worker advertises it)."""
    label = FAMILY_LABELS.get(family, family)
    if request.negative_prompt and not negative_prompt:
        raise RequestError("negative_prompt", f"{label} models take no negative prompt", rule="")
    for field in ("width", "height"):
        value = getattr(request, field)
        if value % size_multiple:
            rule = f"a multiple of {size_multiple} from {L.MIN_SIZE} to {L.MAX_SIZE} for {label} models"
            raise RequestError(field, f"{value} is not a multiple of {size_multiple}", rule=rule)
