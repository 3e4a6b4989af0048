"""The built-in `tiny` model: Stable Diffusion's architecture at toy size, made in code.

Seeded random weights and a byte-level tokenizer built locally, so it needs no download
and runs the real diffusers pipeline end to end on a CPU in seconds. Its VAE downsamples
by 8 like SD1.5's, so 512x512 images use 64x64 latents.
"""

from diffusers import PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextModel

from seedgrid.worker.models.tiny_parts import (
    TEXT_WIDTH,
    build_tiny_tokenizer,
    build_tiny_vae,
    seeded_weights,
    tiny_clip_config,
)

TINY_MODEL_NAME = "tiny"
TINY_SEED = 20240101


def build_tiny_pipeline() -> StableDiffusionPipeline:
    with seeded_weights(TINY_SEED):
        tokenizer = build_tiny_tokenizer()
        text_encoder = CLIPTextModel(tiny_clip_config(tokenizer))
        unet = UNet2DConditionModel(
            sample_size=64,
            in_channels=4,
            out_channels=4,
            block_out_channels=(8, 8, 16, 32),
            layers_per_block=1,
            down_block_types=("DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
            cross_attention_dim=TEXT_WIDTH,
            attention_head_dim=8,
            norm_num_groups=8,
        )
        vae = build_tiny_vae(sample_size=512)
    # Stable Diffusion 1.5's own scheduler config, so per-job schedulers derive from it as from a real model.
    scheduler = PNDMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        set_alpha_to_one=False,
        skip_prk_steps=True,
        steps_offset=1,
    )
    pipeline = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.set_progress_bar_config(disable=True)
    return pipeline
