"""What a worker asks of its engine, met by the real PipelineEngine and by the SimulatedEngine (no torch here)."""

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from PIL import Image

from seedgrid.shared.request import Item, JobRequest

# The callbacks get batches of the very items given to run(): a turn passes items that know their job.
ItemT = TypeVar("ItemT", bound=Item)
StepCallback = Callable[[int, int, Sequence[ItemT]], None]  # (step, steps, the batch being denoised)
BatchCallback = Callable[[Sequence[ItemT], list[Image.Image | None]], None]  # None: an image that came out bad
PreviewCallback = Callable[[Sequence[ItemT], int, list[Image.Image]], None]  # (batch, step, one image per item)


class Engine(Protocol):
    device: str
    max_batch: int

    @property
    def model_name(self) -> str: ...

    @property
    def schedulers(self) -> list[str]: ...

    def check(self, request: JobRequest) -> None:
        """Refuse what this engine cannot serve (RequestError, naming the field)."""
        ...

    def run(
        self,
        request: JobRequest,
        items: Sequence[ItemT],
        on_step: StepCallback[ItemT],
        on_batch: BatchCallback[ItemT],
        on_preview: PreviewCallback[ItemT] | None = None,
    ) -> None:
        """Generate `items` in batches, reporting each step, each batch's images and (if asked) previews."""
        ...
