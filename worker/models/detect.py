"""Which family a model is: a diffusers folder or hub id by its model_index.json, one file by its keys."""

from collections.abc import Iterable
from pathlib import Path

from diffusers import DiffusionPipeline, FluxTransformer2DModel
from safetensors import safe_open

# model_index.json's `_class_name` -> family
PIPELINE_FAMILIES = {"StableDiffusionPipeline": "sd", "StableDiffusionXLPipeline": "sdxl", "FluxPipeline": "flux"}
# Key prefixes of single-file checkpoints in their original (non-diffusers) layout.
SDXL_SECOND_ENCODER = "conditioner.embedders.1.model."
SDXL_REFINER_ENCODER = "conditioner.embedders.0.model."
SD_TEXT_ENCODER = "cond_stage_model."  # SD 1.x's CLIP (cond_stage_model.transformer.) and SD 2.x's
# OpenCLIP (cond_stage_model.model.transformer.): both family "sd"
# The marker A1111, Forge and ComfyUI read in v-prediction checkpoints (SD 1.x/2.x and SDXL fine-tunes).
V_PREDICTION_KEY = "v_pred"
# Flux's transformer in Black Forest Labs' layout, alone or (ComfyUI, Forge) under the UNet's prefix.
FLUX_BLOCKS = ("double_blocks.", "model.diffusion_model.double_blocks.")
FLUX_GUIDANCE_KEY = "guidance_in."  # dev's guidance embedding; schnell has none


def family_from_class_name(class_name: str, model: str) -> str:
    if class_name not in PIPELINE_FAMILIES:
        served = ", ".join(PIPELINE_FAMILIES)
        raise ValueError(f"model: {model} is a {class_name or 'pipeline of no class'}; served: {served}")
    return PIPELINE_FAMILIES[class_name]


def family_from_keys(keys: Iterable[str], model: str) -> str:
    def has(prefix: str) -> bool:
        return any(key.startswith(prefix) for key in keys)

    keys = list(keys)
    if has(SDXL_SECOND_ENCODER):
        return "sdxl"
    if has(SDXL_REFINER_ENCODER):
        raise ValueError(f"model: {model} is an SDXL refiner, which is not served on its own")
    if has(SD_TEXT_ENCODER):
        return "sd"
    if any(has(prefix) for prefix in FLUX_BLOCKS):
        return "flux"
    raise ValueError(f"model: {model} has neither SD's, SDXL's nor Flux's keys; not a known family")


def flux_guidance_embedded(model: str) -> bool | None:
    """Whether a Flux model embeds distilled guidance (dev: yes, schnell: no), read without loading it: a file's
    keys, a folder's (or hub id's) transformer config; None where that cannot be read."""
    path = Path(model).expanduser()
    try:
        if path.is_file():
            with safe_open(str(path), framework="pt") as checkpoint:
                return any(FLUX_GUIDANCE_KEY in key for key in checkpoint.keys())
        config = FluxTransformer2DModel.load_config(str(path) if path.is_dir() else model, subfolder="transformer")
        return bool(config.get("guidance_embeds", True))
    except (OSError, ValueError):
        return None


def single_file_prediction_type(path: str) -> str | None:
    """v_prediction for a .safetensors file that carries the v-prediction marker; None: as its config says."""
    with safe_open(path, framework="pt") as checkpoint:
        return "v_prediction" if V_PREDICTION_KEY in set(checkpoint.keys()) else None


def detect_family(model: str) -> str:
    """'sd', 'sdxl' or 'flux' for a hub id, a diffusers folder or a .safetensors file (a hub id downloads its index)."""
    path = Path(model).expanduser()
    if path.is_file():
        with safe_open(str(path), framework="pt") as checkpoint:
            return family_from_keys(set(checkpoint.keys()), path.name)
    index = DiffusionPipeline.load_config(str(path) if path.is_dir() else model)
    return family_from_class_name(index.get("_class_name", ""), model)
