"""Small random LoRAs for the tiny models, written as diffusers writes LoRA files."""

import copy
from pathlib import Path

import torch
from peft import LoraConfig, inject_adapter_in_model
from peft.utils import get_peft_model_state_dict

from seedgrid.worker.families import family_of

RANK = 4
DENOISER_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]  # every attention layer's projections
TEXT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]  # CLIP's


def make_tiny_lora(pipeline, path: Path, seed: int = 0, scale: float = 0.3, text_encoders: bool = False) -> Path:
    """A LoRA on the attention projections of `pipeline`'s denoiser (and with `text_encoders`, of its CLIP
    text encoders) with seeded random down and up matrices (entries ~ N(0, scale^2)), saved at `path`.
    `pipeline` itself is left as it was."""
    denoiser = family_of(pipeline).denoiser_name
    generator = torch.Generator().manual_seed(seed)
    layers = {}
    for component in type(pipeline)._lora_loadable_modules:
        module = getattr(pipeline, component, None)
        if module is not None and (component == denoiser or text_encoders):
            targets = DENOISER_TARGETS if component == denoiser else TEXT_TARGETS
            layers[f"{component}_lora_layers"] = _random_lora(module, targets, generator, scale)
    path.parent.mkdir(parents=True, exist_ok=True)
    type(pipeline).save_lora_weights(path.parent, weight_name=path.name, **layers)
    return path


def _random_lora(module, targets: list[str], generator: torch.Generator, scale: float) -> dict[str, torch.Tensor]:
    model = inject_adapter_in_model(
        LoraConfig(r=RANK, lora_alpha=RANK, target_modules=targets), copy.deepcopy(module).to(torch.float32)
    )
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if ".lora_" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * scale)
    return get_peft_model_state_dict(model)
