"""Building a published architecture with seeded random weights: what bench/sd15_configs.py and
bench/family_configs.py share.

A family's builders are a dict of name -> a function that makes one module from its config; these
helpers make them all on a device (a GPU, or "meta" for a check that allocates nothing).
"""

from collections.abc import Callable

import torch
from transformers import CLIPTextConfig, CLIPTextModel

Builders = dict[str, Callable[[], torch.nn.Module]]


def clip_text_encoder(config: dict, tokenizer, cls=CLIPTextModel):
    """A CLIP text tower from its published config, with the byte-level tokenizer's special-token ids.

    The real vocabulary size (49408) keeps the embedding table its size; the byte-level tokenizer's
    few hundred ids all fall inside it.
    """
    ids = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id}
    return cls(CLIPTextConfig(**dict(config, pad_token_id=tokenizer.pad_token_id, **ids)))


def seeded_modules(device, dtype: torch.dtype, seed: int, builders: Builders) -> dict:
    """Each module made on `device` in the builders' order (float32 init, then cast: one module's float32
    copy at a time), in eval mode; the same seed gives the same weights."""
    out = {}
    with torch.random.fork_rng(devices=[]), torch.device(device):
        torch.manual_seed(seed)
        if str(device).startswith("cuda"):
            torch.cuda.manual_seed(seed)
        for name, build in builders.items():
            out[name] = build().to(dtype).eval()
            if str(device).startswith("cuda"):
                torch.cuda.empty_cache()
    return out


def parameter_counts(builders: Builders) -> dict[str, int]:
    """Parameter counts of the networks, built on the meta device: no memory, no init time."""
    with torch.device("meta"):
        built = {name: build() for name, build in builders.items()}
    return {name: sum(p.numel() for p in module.parameters()) for name, module in built.items()}
