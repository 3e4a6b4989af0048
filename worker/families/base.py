"""What a model family tells the engine: its pipeline, how a batch is called, its defaults and previews."""

import logging
from collections.abc import Sequence
from typing import Any

import torch
from diffusers import DiffusionPipeline

from seedgrid.shared.request import Item, JobRequest
from seedgrid.worker.preview import LatentRGB, sigma_normalized
from seedgrid.worker.schedulers import SCHEDULER_CLASSES, SchedulerTable

log = logging.getLogger(__name__)


def with_prediction_type(pipeline: DiffusionPipeline, prediction_type: str | None) -> DiffusionPipeline:
    """The pipeline with its scheduler predicting `prediction_type` (None: as its config says). Every
    scheduler of a job is made from this one's config (make_scheduler), so each keeps it."""
    if prediction_type and pipeline.scheduler.config.get("prediction_type") != prediction_type:
        log.info("scheduler prediction type: %s (the checkpoint's marker)", prediction_type)
        pipeline.scheduler = type(pipeline.scheduler).from_config(
            pipeline.scheduler.config, prediction_type=prediction_type
        )
    return pipeline


class Family:
    name: str  # as advertised in the heartbeat: "sd", "sdxl", "flux"
    pipeline_class: type[DiffusionPipeline]
    default_size: tuple[int, int]  # (width, height)
    latent_rgb: LatentRGB  # the preview projection of this family's latent space
    load_options: dict[str, Any] = {}  # for from_pretrained and from_single_file
    negative_prompt: bool = True  # whether a request may carry one
    size_multiple: int = 8  # width and height must be multiples of it
    schedulers: SchedulerTable = SCHEDULER_CLASSES  # the contract's names this family may offer
    cuda_dtype: torch.dtype = torch.float16
    denoiser_name = "unet"  # the pipeline's attribute holding the model that runs every step
    speedups: tuple[str, ...] = ("channels_last", "fuse_qkv", "compile")  # the --speedups it can take

    def pipeline_over(self, components: dict[str, Any], like: DiffusionPipeline) -> DiffusionPipeline:
        """A new pipeline object over `components` (shared modules, a job's own scheduler), set up as `like`."""
        raise NotImplementedError

    def load_single_file(self, path: str, dtype: torch.dtype, config: str | None) -> DiffusionPipeline:
        """One .safetensors checkpoint; `config`: a diffusers folder (or hub id) with the component configs."""
        from seedgrid.worker.models.detect import single_file_prediction_type

        extra = {"config": config} if config else {}
        pipeline = self.pipeline_class.from_single_file(path, torch_dtype=dtype, **self.load_options, **extra)
        return with_prediction_type(pipeline, single_file_prediction_type(path))

    def prepare(self, pipeline: DiffusionPipeline) -> None:
        """Once, after loading (and after --vae): what this family needs to run in the pipeline's dtype."""

    def call_arguments(self, pipe: DiffusionPipeline, request: JobRequest, batch: Sequence[Item]) -> dict[str, Any]:
        """The prompt arguments of one batch's pipeline call (and any conditioning the family adds)."""
        raise NotImplementedError

    def denoiser(self, pipeline: DiffusionPipeline) -> torch.nn.Module:
        """The model that runs every step (a UNet, or Flux's transformer): what speedups change."""
        return getattr(pipeline, self.denoiser_name)

    def default_steps(self, pipeline: DiffusionPipeline) -> int:
        return 20

    def default_guidance(self, pipeline: DiffusionPipeline) -> float:
        return 7.5

    def unloaded_defaults(self, model: str) -> tuple[int, float]:
        """(steps, guidance) a model not loaded yet is advertised with, from what can be read without loading."""
        return self.default_steps(None), self.default_guidance(None)

    def noise(self, pipeline: DiffusionPipeline, request: JobRequest, generator: torch.Generator) -> torch.Tensor:
        """One image's initial noise in float32 on the CPU, in the shape the pipeline's `latents` takes."""
        scale = pipeline.vae_scale_factor
        shape = (1, self.denoiser(pipeline).config.in_channels, request.height // scale, request.width // scale)
        return torch.randn(shape, generator=generator, dtype=torch.float32)

    def vae_latents(
        self, pipeline: DiffusionPipeline, latents: torch.Tensor, request: JobRequest | None
    ) -> torch.Tensor:
        """The pipeline's output latents as the VAE decodes them (`request`: their image size)."""
        return latents / pipeline.vae.config.scaling_factor

    def preview_latents(self, pipe: DiffusionPipeline, latents: torch.Tensor, request: JobRequest) -> torch.Tensor:
        """(B, C, h, w) latents of a step in the range the preview projection expects."""
        return sigma_normalized(latents, pipe.scheduler)
