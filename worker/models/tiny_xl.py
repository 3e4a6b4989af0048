"""The built-in `tiny-xl` model: SDXL's architecture at toy size, made in code like `tiny`.

Two CLIP text encoders (the second with a projection, whose pooled output conditions the UNet
with the size and crop time ids), a UNet with SDXL's "text_time" added embedding, and a VAE
that downsamples by 8 with SDXL's scaling factor and force_upcast, all with seeded weights.
"""

from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTextModelWithProjection

from seedgrid.worker.models.tiny_parts import (
    TEXT_WIDTH,
    build_tiny_tokenizer,
    build_tiny_vae,
    seeded_weights,
    tiny_clip_config,
)

TINY_XL_MODEL_NAME = "tiny-xl"
TINY_XL_SEED = 20240102
TEXT_WIDTH_2 = 48  # wider than the first encoder, as in SDXL (1280 vs 768); single-file loading tells them apart by it
TIME_EMBED_WIDTH = 8
TIME_IDS = 6  # original size, crop top-left, target size: two numbers each


def build_tiny_xl_pipeline() -> StableDiffusionXLPipeline:
    with seeded_weights(TINY_XL_SEED):
        tokenizer, tokenizer_2 = build_tiny_tokenizer(), build_tiny_tokenizer()
        text_encoder = CLIPTextModel(tiny_clip_config(tokenizer, projection_dim=TEXT_WIDTH, hidden_act="quick_gelu"))
        text_encoder_2 = CLIPTextModelWithProjection(
            tiny_clip_config(tokenizer_2, TEXT_WIDTH_2, projection_dim=TEXT_WIDTH_2, hidden_act="gelu")
        )
        unet = UNet2DConditionModel(
            sample_size=128,
            in_channels=4,
            out_channels=4,
            block_out_channels=(8, 16, 32),
            layers_per_block=1,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            transformer_layers_per_block=(1, 1, 2),
            cross_attention_dim=TEXT_WIDTH + TEXT_WIDTH_2,  # both encoders' hidden states, side by side
            attention_head_dim=(2, 4, 8),
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=TIME_EMBED_WIDTH,
            projection_class_embeddings_input_dim=TIME_IDS * TIME_EMBED_WIDTH + TEXT_WIDTH_2,  # + the pooled prompt
            norm_num_groups=8,
        )
        vae = build_tiny_vae(sample_size=1024, scaling_factor=0.13025, force_upcast=True)
    # SDXL base's own scheduler config, so per-job schedulers derive from it as from the real model.
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        steps_offset=1,
        timestep_spacing="leading",
        prediction_type="epsilon",
        interpolation_type="linear",
    )
    pipeline = StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        unet=unet,
        scheduler=scheduler,
        force_zeros_for_empty_prompt=True,
        add_watermarker=False,
    )
    pipeline.set_progress_bar_config(disable=True)
    return pipeline
