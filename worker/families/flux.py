"""Flux.1 (dev and schnell): T5 + CLIP prompts, distilled guidance, flow matching, packed 16-channel latents."""

from typing import Any

import torch
from diffusers import FluxPipeline, FluxTransformer2DModel

from seedgrid.worker.families.base import Family
from seedgrid.worker.models.detect import flux_guidance_embedded
from seedgrid.worker.preview import FLUX_LATENT_RGB
from seedgrid.worker.schedulers import FLOW_SCHEDULER_CLASSES

MAX_T5_TOKENS = 512  # FluxPipeline's own limit
# Where a single transformer file takes its text encoders, VAE and configs from without --config.
DEV_REPO, SCHNELL_REPO = "black-forest-labs/FLUX.1-dev", "black-forest-labs/FLUX.1-schnell"
DEV_DEFAULTS, SCHNELL_DEFAULTS = (28, 3.5), (4, 0.0)  # (steps, guidance) as Black Forest Labs give them


def is_schnell(pipeline) -> bool:
    """schnell is timestep-distilled and has no guidance embedding; dev embeds the guidance it was distilled from."""
    return not pipeline.transformer.config.guidance_embeds


class FluxFamily(Family):
    name = "flux"
    pipeline_class = FluxPipeline
    default_size = (1024, 1024)
    latent_rgb = FLUX_LATENT_RGB
    negative_prompt = False  # guidance is distilled into the model: no second (unconditional) pass
    size_multiple = 16  # 8x the VAE, then 2x2 patches
    schedulers = FLOW_SCHEDULER_CLASSES
    cuda_dtype = torch.bfloat16  # Flux's activations overflow float16
    denoiser_name = "transformer"

    def pipeline_over(self, components, like):
        return type(like)(**components)

    def load_single_file(self, path, dtype, config):
        # Black Forest Labs' and most shared Flux files hold the transformer only: it comes from the
        # file, the rest (text encoders, VAE, scheduler) from `config` or the matching FLUX.1 repo.
        extra = {"config": config, "subfolder": "transformer"} if config else {}
        transformer = FluxTransformer2DModel.from_single_file(path, torch_dtype=dtype, **extra)
        repo = config or (DEV_REPO if transformer.config.guidance_embeds else SCHNELL_REPO)
        return FluxPipeline.from_pretrained(repo, transformer=transformer, torch_dtype=dtype, use_safetensors=True)

    def prepare(self, pipeline) -> None:
        vae = pipeline.vae
        if vae.dtype == torch.float16 and vae.config.get("force_upcast", True):
            vae.to(torch.float32)

    def default_steps(self, pipeline) -> int:
        return SCHNELL_DEFAULTS[0] if pipeline is not None and is_schnell(pipeline) else DEV_DEFAULTS[0]

    def default_guidance(self, pipeline) -> float:
        return SCHNELL_DEFAULTS[1] if pipeline is not None and is_schnell(pipeline) else DEV_DEFAULTS[1]

    def unloaded_defaults(self, model: str) -> tuple[int, float]:
        """schnell's or dev's, from the file's keys or the transformer's config (dev's where unreadable)."""
        return SCHNELL_DEFAULTS if flux_guidance_embedded(model) is False else DEV_DEFAULTS

    def call_arguments(self, pipe, request, batch) -> dict[str, Any]:
        return {
            "prompt": [item.prompt for item in batch],
            "max_sequence_length": min(MAX_T5_TOKENS, pipe.tokenizer_2.model_max_length),
        }

    def _latent_size(self, pipeline, request) -> tuple[int, int]:
        """(height, width) of the unpacked latents, as FluxPipeline.prepare_latents makes them."""
        scale = pipeline.vae_scale_factor * 2
        return 2 * (request.height // scale), 2 * (request.width // scale)

    def noise(self, pipeline, request, generator) -> torch.Tensor:
        # Drawn unpacked, image by image, then packed into 2x2 patches as FluxPipeline does.
        channels = pipeline.transformer.config.in_channels // 4
        height, width = self._latent_size(pipeline, request)
        noise = torch.randn((1, channels, height, width), generator=generator, dtype=torch.float32)
        return FluxPipeline._pack_latents(noise, 1, channels, height, width)

    def _unpack(self, pipeline, latents, request) -> torch.Tensor:
        return FluxPipeline._unpack_latents(latents, request.height, request.width, pipeline.vae_scale_factor)

    def vae_latents(self, pipeline, latents, request) -> torch.Tensor:
        if request is None:
            raise ValueError("Flux latents are packed: decoding them needs the request's size")
        config = pipeline.vae.config
        return self._unpack(pipeline, latents, request) / config.scaling_factor + config.shift_factor

    def preview_latents(self, pipe, latents, request) -> torch.Tensor:
        # Flow matching keeps latents in unit range (x_t = (1 - t) x_0 + t noise): no sigma scaling.
        return self._unpack(pipe, latents, request)


FLUX = FluxFamily()
