"""SDXL: two text encoders and pooled embeddings, size and crop conditioning, 1024x1024 by default."""

import logging
from typing import Any

import torch
from diffusers import StableDiffusionXLPipeline

from seedgrid.worker.families.base import Family
from seedgrid.worker.preview import SDXL_LATENT_RGB

log = logging.getLogger(__name__)


class SDXLFamily(Family):
    name = "sdxl"
    pipeline_class = StableDiffusionXLPipeline
    default_size = (1024, 1024)
    latent_rgb = SDXL_LATENT_RGB
    load_options = {"add_watermarker": False}

    def pipeline_over(self, components, like):
        return type(like)(
            **components,
            force_zeros_for_empty_prompt=like.config.force_zeros_for_empty_prompt,
            add_watermarker=False,  # decoding is the engine's; the pipeline returns latents
        )

    def prepare(self, pipeline) -> None:
        # SDXL's own VAE overflows in float16 (NaN or black images); its config says so with
        # force_upcast. A fixed VAE (--vae madebyollin/sdxl-vae-fp16-fix) says it is not needed.
        vae = pipeline.vae
        if vae.dtype == torch.float16 and vae.config.get("force_upcast", True):
            log.info("SDXL VAE in float32 (its config asks for it; --vae with an fp16-fixed VAE avoids it)")
            vae.to(torch.float32)

    def call_arguments(self, pipe, request, batch) -> dict[str, Any]:
        guided = request.guidance > 1 and pipe.unet.config.time_cond_proj_dim is None
        negatives = [item.negative_prompt for item in batch]
        embeds, negative_embeds, pooled, negative_pooled = pipe.encode_prompt(
            prompt=[item.prompt for item in batch],
            device=pipe._execution_device,
            num_images_per_prompt=1,
            do_classifier_free_guidance=guided,
            negative_prompt=negatives,
        )
        if guided and pipe.config.force_zeros_for_empty_prompt:
            # Per item, as diffusers does for a whole batch without a negative prompt: merged jobs
            # with and without one then get the image each would get alone.
            empty = torch.tensor([not text for text in negatives], device=embeds.device)
            negative_embeds[empty] = 0
            negative_pooled[empty] = 0
        size = (request.height, request.width)  # diffusers' (height, width) order
        return {
            "prompt_embeds": embeds,
            "negative_prompt_embeds": negative_embeds,
            "pooled_prompt_embeds": pooled,
            "negative_pooled_prompt_embeds": negative_pooled,
            "original_size": size,
            "target_size": size,
            "crops_coords_top_left": (0, 0),
            "negative_original_size": size,
            "negative_target_size": size,
        }


SDXL = SDXLFamily()
