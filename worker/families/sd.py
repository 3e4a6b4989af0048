"""Stable Diffusion 1.x / 2.x: one CLIP text encoder, 512x512 by default."""

from typing import Any

from diffusers import StableDiffusionPipeline

from seedgrid.worker.families.base import Family
from seedgrid.worker.preview import SD_LATENT_RGB


class SDFamily(Family):
    name = "sd"
    pipeline_class = StableDiffusionPipeline
    default_size = (512, 512)
    latent_rgb = SD_LATENT_RGB
    load_options = {"safety_checker": None, "requires_safety_checker": False}

    def pipeline_over(self, components, like):
        return type(like)(**components, requires_safety_checker=False)

    def call_arguments(self, pipe, request, batch) -> dict[str, Any]:
        negatives = [item.negative_prompt for item in batch]
        return {
            "prompt": [item.prompt for item in batch],
            # Items of jobs merged into one batch each bring their own; "" encodes as no negative prompt.
            "negative_prompt": negatives if any(negatives) else None,
        }


SD = SDFamily()
