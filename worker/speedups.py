"""Optional speed changes to a loaded pipeline, each kept off until the GPU benchmark shows it helps.

`seedgrid worker --speedups channels_last,fuse_qkv,compile` turns them on; `bench/gpu.py
--variants` measures each against the plain engine in one run.
"""

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from diffusers import StableDiffusionPipeline

log = logging.getLogger(__name__)

SPEEDUPS = {
    "channels_last": "UNet and VAE in channels-last memory format (NHWC convolutions)",
    "fuse_qkv": "one fused matrix product for each attention layer's query, key and value projections",
    "compile": "torch.compile of the UNet (CUDA graphs on a GPU), warmed up when the worker starts",
}


def parse_speedups(text: str | None) -> tuple[str, ...]:
    """'a,b' -> ('a', 'b'); an unknown name is refused with the list of known ones."""
    names = tuple(dict.fromkeys(part.strip() for part in (text or "").split(",") if part.strip()))
    unknown = [name for name in names if name not in SPEEDUPS]
    if unknown:
        raise ValueError(f"--speedups: unknown {', '.join(unknown)} (known: {', '.join(SPEEDUPS)})")
    return names


def apply_speedups(
    pipeline: "StableDiffusionPipeline", speedups: tuple[str, ...], device: str, compile_backend: str = "inductor"
) -> None:
    """Change the pipeline's modules in place; call after it is on its device."""
    import torch

    if "channels_last" in speedups:
        pipeline.unet.to(memory_format=torch.channels_last)
        pipeline.vae.to(memory_format=torch.channels_last)
    if "fuse_qkv" in speedups:
        pipeline.fuse_qkv_projections()
    if "compile" in speedups:
        # CUDA graphs replay a whole UNet call for each batch shape, which removes the launch
        # overhead that bounds batch 1; on a CPU there are no graphs to capture.
        mode = "reduce-overhead" if device.startswith("cuda") and compile_backend == "inductor" else None
        pipeline.unet = torch.compile(pipeline.unet, mode=mode, fullgraph=True, backend=compile_backend)
    if speedups:
        log.info("speedups on: %s", ", ".join(speedups))
