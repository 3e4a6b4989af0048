"""What the built-in tiny models (`tiny`, `tiny-xl`, `tiny-flux`) share: the byte-level CLIP tokenizer, the
CLIP text encoder's config, the VAE and the seeding of their weights.

The weights depend on the order in which modules are made after the seed, so each model builds its
modules itself, in its own order, inside `seeded_weights`.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from diffusers import AutoencoderKL
from tokenizers import pre_tokenizers
from transformers import CLIPTextConfig, CLIPTokenizer

TEXT_WIDTH = 32
MAX_TOKENS = 77


@contextmanager
def seeded_weights(seed: int) -> Iterator[None]:
    """Modules made inside get the same random weights every time; the caller's random state is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def build_tiny_tokenizer() -> CLIPTokenizer:
    """CLIP's byte-level BPE with no merges: one token per byte, end-of-word marked."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {c: i for i, c in enumerate(alphabet)}
    vocab.update({c + "</w>": len(alphabet) + i for i, c in enumerate(alphabet)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=MAX_TOKENS)


def tiny_clip_config(tokenizer: CLIPTokenizer, width: int = TEXT_WIDTH, **settings) -> CLIPTextConfig:
    """A two-layer CLIP text tower `width` wide for `tokenizer`; `settings` add to or override the config."""
    return CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=width,
        intermediate_size=2 * width,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=MAX_TOKENS,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **settings,
    )


def build_tiny_vae(sample_size: int, latent_channels: int = 4, **settings) -> AutoencoderKL:
    """A VAE that downsamples by 8 with few channels; `settings` are the family's own (scaling, upcast, ...)."""
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=latent_channels,
        block_out_channels=(4, 4, 8, 8),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1,
        norm_num_groups=4,
        sample_size=sample_size,
        **settings,
    )
