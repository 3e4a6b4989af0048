"""Load a pipeline by name: a built-in tiny model, a hub id, a local diffusers folder, or one .safetensors file."""

import logging
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DiffusionPipeline
from diffusers.models.attention_processor import AttnProcessor2_0

from seedgrid.worker.families import family_named, family_of
from seedgrid.worker.memory_plan import MemoryPlan, apply_plan, choose_plan, gpu_free_bytes, model_size
from seedgrid.worker.models.detect import detect_family
from seedgrid.worker.models.tiny import TINY_MODEL_NAME, build_tiny_pipeline
from seedgrid.worker.models.tiny_flux import TINY_FLUX_MODEL_NAME, build_tiny_flux_pipeline
from seedgrid.worker.models.tiny_xl import TINY_XL_MODEL_NAME, build_tiny_xl_pipeline

log = logging.getLogger(__name__)

PICKLE_SUFFIXES = {".ckpt", ".pt", ".pth", ".bin", ".pkl"}
BUILT_IN = {
    TINY_MODEL_NAME: build_tiny_pipeline,
    TINY_XL_MODEL_NAME: build_tiny_xl_pipeline,
    TINY_FLUX_MODEL_NAME: build_tiny_flux_pipeline,
}
BUILT_IN_FAMILIES = {TINY_MODEL_NAME: "sd", TINY_XL_MODEL_NAME: "sdxl", TINY_FLUX_MODEL_NAME: "flux"}


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def dtype_for(device: str, family: str = "sd") -> torch.dtype:
    """On CUDA the family's half type (float16: about 3x faster, the guide's advice; Flux: bfloat16); else float32."""
    return family_named(family).cuda_dtype if device.startswith("cuda") else torch.float32


def model_display_name(model: str) -> str:
    """The name a worker advertises: a hub id as is, a local path by its last part."""
    path = Path(model)
    if model in BUILT_IN or not path.exists():
        return model
    return path.stem if path.is_file() else path.name


def load_pipeline(
    model: str,
    device: str,
    vae: str | None = None,
    dtype: torch.dtype | None = None,
    config: str | None = None,
) -> DiffusionPipeline:
    """Build or load the pipeline and move it to `device`, with the optimizations that device allows.

    `dtype` defaults to dtype_for(device, the model's family); `config` is a diffusers folder with the configs a single
    .safetensors file is loaded with (default: diffusers finds its family's configs on the hub).
    """
    return load_placed(model, device, vae, dtype, config)[0]


def load_placed(
    model: str,
    device: str,
    vae: str | None = None,
    dtype: torch.dtype | None = None,
    config: str | None = None,
    memory: str = "full",
) -> tuple[DiffusionPipeline, MemoryPlan]:
    """load_pipeline, placed on `device` as `memory` (see MEMORY_MODES) says: all of it, or offloaded to the CPU."""
    if model in BUILT_IN:
        dtype = dtype or dtype_for(device, BUILT_IN_FAMILIES[model])
        pipeline = BUILT_IN[model]()
        if dtype != torch.float32:
            pipeline = pipeline.to(dtype=dtype)
    else:
        pipeline = _load_real(model, device, dtype, config)
        dtype = pipeline.dtype
    if vae:
        pipeline.vae = _load_vae(vae, dtype)
    family = family_of(pipeline)
    family.prepare(pipeline)
    pipeline.set_progress_bar_config(disable=True)
    for component in pipeline.components.values():  # inference only; a LoRA load would freeze them anyway,
        if isinstance(component, torch.nn.Module):  # and half-precision kernels round differently once frozen
            component.requires_grad_(False)
    plan = choose_plan(memory, gpu_free_bytes(device), model_size(pipeline), family.name)
    log.info("memory: %s", plan.reason)
    pipeline = apply_plan(pipeline, plan, device)
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        if hasattr(pipeline, "unet"):  # Flux's transformer has its own SDPA attention
            pipeline.unet.set_attn_processor(AttnProcessor2_0())
    return pipeline, plan


def _refuse_pickle(path: Path) -> None:
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise ValueError(f"model: {path.name} is a pickle checkpoint; only .safetensors files are loaded")


def _load_real(model: str, device: str, dtype: torch.dtype | None, config: str | None = None) -> DiffusionPipeline:
    path = Path(model).expanduser()
    _refuse_pickle(path)
    if path.is_file() and path.suffix.lower() != ".safetensors":
        raise ValueError(f"model: {path.name} is not a .safetensors file")
    family = family_named(detect_family(model))
    dtype = dtype or dtype_for(device, family.name)
    cls = family.pipeline_class
    common = {"torch_dtype": dtype, **family.load_options}
    log.info("loading %s as a %s model", model, family.name)
    if path.is_file():
        return family.load_single_file(str(path), dtype, config)
    if path.is_dir():
        return cls.from_pretrained(str(path), use_safetensors=True, **common)
    if dtype == torch.float16:
        try:
            return cls.from_pretrained(model, use_safetensors=True, variant="fp16", **common)
        except (OSError, ValueError):
            log.info("no fp16 variant of %s; loading the full weights as float16", model)
    return cls.from_pretrained(model, use_safetensors=True, **common)


def _load_vae(vae: str, dtype: torch.dtype) -> AutoencoderKL:
    path = Path(vae).expanduser()
    _refuse_pickle(path)
    if path.is_file():
        return AutoencoderKL.from_single_file(str(path), torch_dtype=dtype)
    return AutoencoderKL.from_pretrained(
        vae if not path.is_dir() else str(path), torch_dtype=dtype, use_safetensors=True
    )
