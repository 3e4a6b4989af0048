"""Where a pipeline's weights live on a small GPU: all on it, one component at a time, or streamed layer by layer.

`seedgrid worker --memory auto` measures the weights and the GPU's free memory and picks the fastest mode
that should fit; an explicit mode is used as given. Attention stays on PyTorch's SDPA in every mode.
Torch is imported only when needed, so choosing a plan needs no torch.
"""

from dataclasses import dataclass
from typing import Any, NamedTuple

MEMORY_MODES = ("auto", "full", "model-offload", "sequential-offload")
GB = 1e9  # decimal gigabytes, as `seedgrid workers` prints memory


class Working(NamedTuple):
    """Memory a job needs besides the weights, at the family's default size and batch 1."""

    denoise: float  # activations of one denoiser step (guidance included)
    decode: float  # the VAE decoding the latents into the image


# Estimates, not measurements: on the generous side, since running out of memory costs more than offloading.
# SDXL's VAE decodes in float32 (it overflows in float16), and tiling starts above 1024 px for SDXL and Flux.
WORKING_BYTES = {
    "sd": Working(denoise=0.75 * GB, decode=1.5 * GB),  # 512 x 512
    "sdxl": Working(denoise=1.5 * GB, decode=3 * GB),  # 1024 x 1024
    "flux": Working(denoise=3 * GB, decode=6 * GB),  # 1024 x 1024
}


@dataclass(frozen=True)
class ModelSize:
    """Bytes of the weights (parameters and buffers) in the dtype they run in."""

    total_bytes: int
    denoiser_bytes: int  # the UNet or the Flux transformer


@dataclass(frozen=True)
class MemoryPlan:
    mode: str  # one of MEMORY_MODES but "auto"
    vae_tiling: bool
    reason: str  # one line, printed when the worker starts and shown by `seedgrid workers`


def _module_bytes(module: Any) -> int:
    tensors = [*module.parameters(), *module.buffers()]
    return sum(tensor.numel() * tensor.element_size() for tensor in tensors)


def model_size(pipeline: Any) -> ModelSize:
    """The weights of the pipeline's torch modules; measure before apply_plan (offload moves them)."""
    import torch

    modules = [part for part in pipeline.components.values() if isinstance(part, torch.nn.Module)]
    denoiser = getattr(pipeline, "unet", None)
    if denoiser is None:
        denoiser = getattr(pipeline, "transformer", None)
    if denoiser is None:
        raise ValueError(f"model: {type(pipeline).__name__} has neither a UNet nor a transformer")
    return ModelSize(sum(_module_bytes(module) for module in modules), _module_bytes(denoiser))


def choose_plan(requested: str, free_bytes: int | None, size: ModelSize, family: str) -> MemoryPlan:
    """The plan for `--memory requested`; free_bytes is the GPU's free memory, None for a device that is no GPU."""
    if requested not in MEMORY_MODES:
        raise ValueError(f"--memory: unknown mode {requested!r} (allowed: {', '.join(MEMORY_MODES)})")
    if free_bytes is None:
        if requested in ("auto", "full"):
            return MemoryPlan("full", False, "full: not a CUDA device, offloading applies to GPUs only")
        return MemoryPlan(requested, True, f"{requested}: requested with --memory")
    figures = f"{size.total_bytes / GB:.1f} GB of weights, {free_bytes / GB:.1f} GB free on the GPU"
    if requested != "auto":
        return MemoryPlan(requested, requested != "full", f"{requested} (--memory): {figures}")
    if family not in WORKING_BYTES:
        raise ValueError(f"--memory auto: no memory estimates for model family {family!r}")
    working = WORKING_BYTES[family]
    # Denoising and decoding take turns, so their working memory is never needed at once.
    if free_bytes >= size.total_bytes + max(working):
        mode = "full"
    # Offloaded, only the component that runs is on the GPU: the denoiser, or later the VAE alone.
    elif free_bytes >= max(size.denoiser_bytes + working.denoise, working.decode):
        mode = "model-offload"
    else:
        mode = "sequential-offload"
    return MemoryPlan(mode, mode != "full", f"{mode}: {figures}")


def gpu_free_bytes(device: str) -> int | None:
    """Free memory of a CUDA device; None for any other device (CUDA is not touched then)."""
    import torch

    if torch.device(device).type != "cuda":
        return None
    free, _total = torch.cuda.mem_get_info(torch.device(device))
    return int(free)


def apply_plan(pipeline: Any, plan: MemoryPlan, device: str) -> Any:
    """Put the pipeline (still on the CPU) where the plan says; offloading is refused for a CPU device."""
    import torch

    if plan.mode == "full":
        pipeline = pipeline.to(device)
    elif plan.mode not in ("model-offload", "sequential-offload"):
        raise ValueError(f"--memory: cannot apply mode {plan.mode!r}")
    elif torch.device(device).type == "cpu":
        raise ValueError(f"--memory {plan.mode}: offloading moves weights to a GPU, and the device is the CPU")
    elif plan.mode == "model-offload":
        pipeline.enable_model_cpu_offload(device=device)
    else:
        pipeline.enable_sequential_cpu_offload(device=device)
    if plan.vae_tiling:
        pipeline.vae.enable_tiling()
    return pipeline
