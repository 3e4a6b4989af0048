"""Stable Diffusion 1.5's architecture from its published config.json files, with random weights.

Speed does not depend on the weights' values, so the GPU benchmark builds SD1.5 here instead of
downloading it. The dicts are the values of stable-diffusion-v1-5's unet/, vae/, text_encoder/ and
scheduler/ config.json files (keys that only record provenance are left out).
"""

import torch
from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextModel

from bench.random_weights import Builders, clip_text_encoder, parameter_counts, seeded_modules
from seedgrid.worker.models.tiny_parts import build_tiny_tokenizer

SD15_UNET_CONFIG = {
    "act_fn": "silu",
    "attention_head_dim": 8,
    "block_out_channels": (320, 640, 1280, 1280),
    "center_input_sample": False,
    "cross_attention_dim": 768,
    "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
    "sample_size": 64,
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
}

SD15_VAE_CONFIG = {
    "act_fn": "silu",
    "block_out_channels": (128, 256, 512, 512),
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "in_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "out_channels": 3,
    "sample_size": 512,
    "scaling_factor": 0.18215,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
}

# CLIP ViT-L/14's text tower.
SD15_TEXT_CONFIG = {
    "attention_dropout": 0.0,
    "bos_token_id": 0,
    "dropout": 0.0,
    "eos_token_id": 2,
    "hidden_act": "quick_gelu",
    "hidden_size": 768,
    "initializer_factor": 1.0,
    "initializer_range": 0.02,
    "intermediate_size": 3072,
    "layer_norm_eps": 1e-05,
    "max_position_embeddings": 77,
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "pad_token_id": 1,
    "projection_dim": 768,
    "vocab_size": 49408,
}

SD15_SCHEDULER_CONFIG = {
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
}

# Parameter counts of the published SD1.5 weights, for checking the configs above.
SD15_UNET_PARAMETERS = 859_520_964
SD15_VAE_PARAMETERS = 83_653_863
SD15_TEXT_PARAMETERS = 123_060_480


def build_sd15_unet() -> UNet2DConditionModel:
    return UNet2DConditionModel(**SD15_UNET_CONFIG)


def build_sd15_vae() -> AutoencoderKL:
    return AutoencoderKL(**SD15_VAE_CONFIG)


def build_sd15_text_encoder(tokenizer) -> CLIPTextModel:
    return clip_text_encoder(SD15_TEXT_CONFIG, tokenizer)


def sd15_modules(tokenizer) -> Builders:
    return {"unet": build_sd15_unet, "vae": build_sd15_vae, "text_encoder": lambda: build_sd15_text_encoder(tokenizer)}


def build_sd15_random(dtype: torch.dtype, device: str, seed: int = 0) -> StableDiffusionPipeline:
    """SD1.5's UNet, VAE and text encoder with seeded random weights, made directly on `device`.

    Initializing 1.07 billion parameters is quick on a GPU and slow on a CPU, so the modules are
    created inside `torch.device(device)` (no copy from host memory), then cast to `dtype`.
    The tokenizer is the `tiny` model's byte-level CLIP tokenizer (no download): prompts still
    become 77 token ids, as with CLIP's BPE, so the text encoder does the same work.
    """
    tokenizer = build_tiny_tokenizer()
    modules = seeded_modules(device, dtype, seed, sd15_modules(tokenizer))
    pipeline = StableDiffusionPipeline(
        **modules,
        tokenizer=tokenizer,
        scheduler=PNDMScheduler.from_config(SD15_SCHEDULER_CONFIG),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def parameter_counts_on_meta() -> dict[str, int]:
    """Parameter counts of the three networks, built on the meta device: no memory, no init time."""
    return parameter_counts(sd15_modules(build_tiny_tokenizer()))
