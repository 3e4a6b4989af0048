"""SDXL base 1.0's and FLUX.1-schnell's architectures from their published config.json files, with random weights.

As bench/sd15_configs.py does for SD1.5: speed does not depend on the weights' values, so the GPU
benchmark builds these instead of downloading them. Nothing is built on import; a builder makes
its modules directly on the device it is given (a GPU, or "meta" for a check that allocates nothing).
Keys that only record provenance (_class_name, _diffusers_version, architectures, torch_dtype, ...)
are left out.

Where the numbers come from (public copies of the hub repos' config.json files, looked up for this file):
- SDXL: stabilityai/stable-diffusion-xl-base-1.0's unet/, vae/, text_encoder/, text_encoder_2/ and
  scheduler/ configs as saved in the SDXL pipeline folder of github.com/PRITHIVSAKTHIUR/AI-Art-Generator-SDXL
  (a fine-tune of SDXL base that keeps its architecture; diffusers 0.22 wrote them), value for value the same
  as the base 1.0 configs quoted in other public code (offline-config scripts and SDXL loaders).
- FLUX.1-schnell: black-forest-labs/FLUX.1-schnell's transformer/, vae/, text_encoder/ (CLIP-L),
  text_encoder_2/ (T5-XXL encoder) and scheduler/ configs as saved in github.com/edkamesh/FluX-optimized
  (its model_index.json and configs name FLUX.1-schnell; its weights are 4-bit, a quantization_config
  this file leaves out). The transformer's values are also diffusers' own FluxTransformer2DModel defaults.
"""

import torch
from diffusers import (
    AutoencoderKL,
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    FluxPipeline,
    FluxTransformer2DModel,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextModelWithProjection, T5Config, T5EncoderModel

from bench.random_weights import Builders, clip_text_encoder, parameter_counts, seeded_modules
from bench.sd15_configs import SD15_TEXT_CONFIG
from seedgrid.worker.models.tiny_flux import build_tiny_t5_tokenizer
from seedgrid.worker.models.tiny_parts import build_tiny_tokenizer

# ---- SDXL base 1.0 ---------------------------------------------------------------------------

SDXL_UNET_CONFIG = {
    "act_fn": "silu",
    "addition_embed_type": "text_time",
    "addition_embed_type_num_heads": 64,
    "addition_time_embed_dim": 256,
    "attention_head_dim": (5, 10, 20),
    "block_out_channels": (320, 640, 1280),
    "center_input_sample": False,
    "class_embed_type": None,
    "class_embeddings_concat": False,
    "conv_in_kernel": 3,
    "conv_out_kernel": 3,
    "cross_attention_dim": 2048,
    "cross_attention_norm": None,
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    "downsample_padding": 1,
    "dual_cross_attention": False,
    "encoder_hid_dim": None,
    "encoder_hid_dim_type": None,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_only_cross_attention": None,
    "mid_block_scale_factor": 1,
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "num_attention_heads": None,
    "num_class_embeds": None,
    "only_cross_attention": False,
    "out_channels": 4,
    "projection_class_embeddings_input_dim": 2816,
    "resnet_out_scale_factor": 1.0,
    "resnet_skip_time_act": False,
    "resnet_time_scale_shift": "default",
    "sample_size": 128,
    "time_cond_proj_dim": None,
    "time_embedding_act_fn": None,
    "time_embedding_dim": None,
    "time_embedding_type": "positional",
    "timestep_post_act": None,
    "transformer_layers_per_block": (1, 2, 10),
    "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    "upcast_attention": None,
    "use_linear_projection": True,
}

SDXL_VAE_CONFIG = {
    "act_fn": "silu",
    "block_out_channels": (128, 256, 512, 512),
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "force_upcast": True,
    "in_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "out_channels": 3,
    "sample_size": 1024,
    "scaling_factor": 0.13025,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
}

# CLIP ViT-L/14's text tower, SD1.5's (bench/sd15_configs.py); SDXL takes its penultimate hidden states.
CLIP_L_TEXT_CONFIG = SD15_TEXT_CONFIG

# OpenCLIP ViT-bigG/14's text tower, with its projection (the pooled prompt).
SDXL_TEXT_2_CONFIG = {
    "attention_dropout": 0.0,
    "bos_token_id": 0,
    "dropout": 0.0,
    "eos_token_id": 2,
    "hidden_act": "gelu",
    "hidden_size": 1280,
    "initializer_factor": 1.0,
    "initializer_range": 0.02,
    "intermediate_size": 5120,
    "layer_norm_eps": 1e-05,
    "max_position_embeddings": 77,
    "num_attention_heads": 20,
    "num_hidden_layers": 32,
    "pad_token_id": 1,
    "projection_dim": 1280,
    "vocab_size": 49408,
}

SDXL_SCHEDULER_CONFIG = {  # EulerDiscreteScheduler
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "interpolation_type": "linear",
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "sample_max_value": 1.0,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "trained_betas": None,
    "use_karras_sigmas": False,
}

# ---- FLUX.1-schnell --------------------------------------------------------------------------

FLUX_SCHNELL_TRANSFORMER_CONFIG = {
    "attention_head_dim": 128,
    "axes_dims_rope": (16, 56, 56),
    "guidance_embeds": False,  # schnell is timestep-distilled (dev: True)
    "in_channels": 64,
    "joint_attention_dim": 4096,
    "num_attention_heads": 24,
    "num_layers": 19,
    "num_single_layers": 38,
    "patch_size": 1,
    "pooled_projection_dim": 768,
}

FLUX_VAE_CONFIG = {
    "act_fn": "silu",
    "block_out_channels": (128, 256, 512, 512),
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "force_upcast": True,
    "in_channels": 3,
    "latent_channels": 16,
    "latents_mean": None,
    "latents_std": None,
    "layers_per_block": 2,
    "mid_block_add_attention": True,
    "norm_num_groups": 32,
    "out_channels": 3,
    "sample_size": 1024,
    "scaling_factor": 0.3611,
    "shift_factor": 0.1159,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "use_post_quant_conv": False,
    "use_quant_conv": False,
}

# google/t5-v1_1-xxl's encoder as FLUX.1 ships it (4.76 billion parameters).
FLUX_T5_CONFIG = {
    "classifier_dropout": 0.0,
    "d_ff": 10240,
    "d_kv": 64,
    "d_model": 4096,
    "decoder_start_token_id": 0,
    "dense_act_fn": "gelu_new",
    "dropout_rate": 0.1,
    "eos_token_id": 1,
    "feed_forward_proj": "gated-gelu",
    "initializer_factor": 1.0,
    "is_encoder_decoder": True,
    "is_gated_act": True,
    "layer_norm_epsilon": 1e-06,
    "num_decoder_layers": 24,
    "num_heads": 64,
    "num_layers": 24,
    "pad_token_id": 0,
    "relative_attention_max_distance": 128,
    "relative_attention_num_buckets": 32,
    "tie_word_embeddings": False,
    "use_cache": True,
    "vocab_size": 32128,
}

FLUX_SCHNELL_SCHEDULER_CONFIG = {  # FlowMatchEulerDiscreteScheduler
    "base_image_seq_len": 256,
    "base_shift": 0.5,
    "max_image_seq_len": 4096,
    "max_shift": 1.15,
    "num_train_timesteps": 1000,
    "shift": 1.0,
    "use_dynamic_shifting": False,
}

FLUX_T5_TOKENS = 512  # FLUX.1's tokenizer_2 model_max_length, FluxPipeline's limit


# ---- building --------------------------------------------------------------------------------


def _t5(tokenizer) -> T5EncoderModel:
    config = dict(FLUX_T5_CONFIG, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    return T5EncoderModel(T5Config(**config))


def sdxl_modules(tokenizer, tokenizer_2) -> Builders:
    return {
        "unet": lambda: UNet2DConditionModel(**SDXL_UNET_CONFIG),
        "vae": lambda: AutoencoderKL(**SDXL_VAE_CONFIG),
        "text_encoder": lambda: clip_text_encoder(CLIP_L_TEXT_CONFIG, tokenizer),
        "text_encoder_2": lambda: clip_text_encoder(SDXL_TEXT_2_CONFIG, tokenizer_2, CLIPTextModelWithProjection),
    }


def flux_schnell_modules(tokenizer, tokenizer_2) -> Builders:
    return {
        "transformer": lambda: FluxTransformer2DModel(**FLUX_SCHNELL_TRANSFORMER_CONFIG),
        "vae": lambda: AutoencoderKL(**FLUX_VAE_CONFIG),
        "text_encoder": lambda: clip_text_encoder(CLIP_L_TEXT_CONFIG, tokenizer),
        "text_encoder_2": lambda: _t5(tokenizer_2),
    }


def t5_tokenizer():
    """The tiny model's unigram T5 tokenizer (no download), padding to FLUX.1's 512 tokens as the real one does."""
    tokenizer = build_tiny_t5_tokenizer()
    tokenizer.model_max_length = FLUX_T5_TOKENS
    return tokenizer


def build_sdxl_random(dtype: torch.dtype, device: str, seed: int = 0) -> StableDiffusionXLPipeline:
    """SDXL base 1.0's UNet, VAE and two text encoders with seeded random weights (3.5 billion parameters)."""
    tokenizer, tokenizer_2 = build_tiny_tokenizer(), build_tiny_tokenizer()
    modules = seeded_modules(device, dtype, seed, sdxl_modules(tokenizer, tokenizer_2))
    pipeline = StableDiffusionXLPipeline(
        **modules,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        scheduler=EulerDiscreteScheduler.from_config(SDXL_SCHEDULER_CONFIG),
        force_zeros_for_empty_prompt=True,
        add_watermarker=False,
    )
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def build_flux_schnell_random(dtype: torch.dtype, device: str, seed: int = 0) -> FluxPipeline:
    """FLUX.1-schnell's transformer, VAE, CLIP-L and T5-XXL encoder with seeded random weights (16.9 billion).

    On a GPU in bfloat16 that is about 34 GB; the T5-XXL encoder alone is 4.76 billion parameters.
    """
    tokenizer, tokenizer_2 = build_tiny_tokenizer(), t5_tokenizer()
    modules = seeded_modules(device, dtype, seed, flux_schnell_modules(tokenizer, tokenizer_2))
    pipeline = FluxPipeline(
        **modules,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        scheduler=FlowMatchEulerDiscreteScheduler.from_config(FLUX_SCHNELL_SCHEDULER_CONFIG),
    )
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def parameter_counts_on_meta(family: str) -> dict[str, int]:
    """Parameter counts of a family's networks, built on the meta device: no memory, no init time."""
    modules = sdxl_modules if family == "sdxl" else flux_schnell_modules
    tokenizer_2 = build_tiny_tokenizer() if family == "sdxl" else t5_tokenizer()
    return parameter_counts(modules(build_tiny_tokenizer(), tokenizer_2))
