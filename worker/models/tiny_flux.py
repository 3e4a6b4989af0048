"""The built-in `tiny-flux` model: Flux.1-dev's architecture at toy size, made in code like `tiny`.

A CLIP text encoder (its pooled output) and a T5 encoder (its sequence) with tokenizers built
locally, a FluxTransformer2DModel with a guidance embedding (as dev; schnell has none), and a
VAE with 16 latent channels and Flux's scaling and shift, all with seeded weights.
"""

import string

from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
from transformers import CLIPTextModel, T5Config, T5EncoderModel, T5Tokenizer

from seedgrid.worker.models.tiny_parts import (
    TEXT_WIDTH,
    build_tiny_tokenizer,
    build_tiny_vae,
    seeded_weights,
    tiny_clip_config,
)

TINY_FLUX_MODEL_NAME = "tiny-flux"
TINY_FLUX_SEED = 20240103
T5_WIDTH = 32
T5_TOKENS = 32  # the T5 sequence the pipeline encodes (Flux: 512, schnell usually 256)
LATENT_CHANNELS = 16


def build_tiny_t5_tokenizer() -> T5Tokenizer:
    """A unigram vocabulary of printable ASCII characters, with and without T5's word-start mark."""
    chars = sorted(set(string.printable) - set(string.whitespace))
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    vocab += [(c, -3.0) for c in chars] + [("\u2581" + c, -2.5) for c in chars]
    return T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=T5_TOKENS)


def build_tiny_flux_pipeline(guidance_embeds: bool = True) -> FluxPipeline:
    """`guidance_embeds=False` makes a schnell-like model (no distilled guidance)."""
    with seeded_weights(TINY_FLUX_SEED):
        tokenizer, tokenizer_2 = build_tiny_tokenizer(), build_tiny_t5_tokenizer()
        text_encoder = CLIPTextModel(tiny_clip_config(tokenizer, hidden_act="quick_gelu"))
        text_encoder_2 = T5EncoderModel(
            T5Config(
                vocab_size=len(tokenizer_2),
                d_model=T5_WIDTH,
                d_kv=8,
                d_ff=2 * T5_WIDTH,
                num_layers=2,
                num_heads=4,
                relative_attention_num_buckets=8,
                feed_forward_proj="gated-gelu",  # T5 v1.1, as Flux's T5-XXL
                dropout_rate=0.0,  # T5's default 0.1 would make every encoding random
                pad_token_id=tokenizer_2.pad_token_id,
                eos_token_id=tokenizer_2.eos_token_id,
                decoder_start_token_id=tokenizer_2.pad_token_id,
            )
        )
        transformer = FluxTransformer2DModel(
            patch_size=1,
            in_channels=4 * LATENT_CHANNELS,  # 2x2 patches of the latents, packed
            num_layers=1,
            num_single_layers=1,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=T5_WIDTH,
            pooled_projection_dim=TEXT_WIDTH,
            guidance_embeds=guidance_embeds,
            axes_dims_rope=(4, 6, 6),  # sums to attention_head_dim
        )
        vae = build_tiny_vae(
            sample_size=1024,
            latent_channels=LATENT_CHANNELS,
            scaling_factor=0.3611,
            shift_factor=0.1159,
            use_quant_conv=False,
            use_post_quant_conv=False,
            force_upcast=True,
        )
    # FLUX.1-dev's scheduler config (schnell: no dynamic shifting, shift 1).
    scheduler = FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000,
        shift=3.0 if guidance_embeds else 1.0,
        use_dynamic_shifting=guidance_embeds,
        base_shift=0.5,
        max_shift=1.15,
        base_image_seq_len=256,
        max_image_seq_len=4096,
    )
    pipeline = FluxPipeline(
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        transformer=transformer,
    )
    for module in (text_encoder, text_encoder_2, transformer, vae):
        module.eval()  # built, not loaded: nothing else leaves training mode
    pipeline.set_progress_bar_config(disable=True)
    return pipeline
