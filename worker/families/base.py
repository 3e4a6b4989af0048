"""What a model family tells the engine: its pipeline, how a batch is called, its defaults and previews."""

from collections.abc import Sequence
from typing import Any

from diffusers import DiffusionPipeline

from seedgrid.shared.request import Item, JobRequest
from seedgrid.worker.preview import LatentRGB


class Family:
    name: str  # as advertised in the heartbeat: "sd", "sdxl"
    pipeline_class: type[DiffusionPipeline]
    default_size: tuple[int, int]  # (width, height)
    latent_rgb: LatentRGB  # the preview projection of this family's latent space
    load_options: dict[str, Any] = {}  # for from_pretrained and from_single_file

    def pipeline_over(self, components: dict[str, Any], like: DiffusionPipeline) -> DiffusionPipeline:
        """A new pipeline object over `components` (shared modules, a job's own scheduler), set up as `like`."""
        raise NotImplementedError

    def prepare(self, pipeline: DiffusionPipeline) -> None:
        """Once, after loading (and after --vae): what this family needs to run in the pipeline's dtype."""

    def call_arguments(self, pipe: DiffusionPipeline, request: JobRequest, batch: Sequence[Item]) -> dict[str, Any]:
        """The prompt arguments of one batch's pipeline call (and any conditioning the family adds)."""
        raise NotImplementedError
