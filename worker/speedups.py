"""Optional speed changes to a loaded pipeline, each kept off until the GPU benchmark shows it helps.

`seedgrid worker --speedups channels_last,fuse_qkv,compile` turns them on; `bench/gpu.py
--variants` measures each against the plain engine in one run.
"""

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

log = logging.getLogger(__name__)

SPEEDUPS = {
    "channels_last": "denoiser (UNet or Flux transformer) and VAE in channels-last memory format (NHWC convolutions)",
    "fuse_qkv": "one fused matrix product for each attention layer's query, key and value projections",
    "compile": "torch.compile of the denoiser (CUDA graphs on a GPU), warmed up when the worker starts",
}


def parse_speedups(text: str | None) -> tuple[str, ...]:
    """'a,b' -> ('a', 'b'); an unknown name is refused with the list of known ones."""
    names = tuple(dict.fromkeys(part.strip() for part in (text or "").split(",") if part.strip()))
    unknown = [name for name in names if name not in SPEEDUPS]
    if unknown:
        raise ValueError(f"--speedups: unknown {', '.join(unknown)} (known: {', '.join(SPEEDUPS)})")
    return names


def apply_speedups(
    pipeline: "DiffusionPipeline", speedups: tuple[str, ...], device: str, compile_backend: str = "inductor"
) -> None:
    """Change the pipeline's modules in place (its family's denoiser and the VAE); call after it is on its
    device. A speedup the pipeline's family cannot take is refused in one line (ValueError)."""
    import torch
    from diffusers.models.attention_processor import FusedAttnProcessor2_0

    from seedgrid.shared.family_rules import FAMILY_LABELS
    from seedgrid.worker.families import family_of

    family = family_of(pipeline)
    refused = [name for name in speedups if name not in family.speedups]
    if refused:
        raise ValueError(
            f"--speedups: {', '.join(refused)} not available for {FAMILY_LABELS.get(family.name, family.name)} "
            f"models (available: {', '.join(family.speedups) or 'none'})"
        )
    denoiser = family.denoiser(pipeline)
    if "channels_last" in speedups:
        denoiser.to(memory_format=torch.channels_last)
        pipeline.vae.to(memory_format=torch.channels_last)
    if "fuse_qkv" in speedups:
        denoiser.fuse_qkv_projections()
        if family.denoiser_name == "unet":  # a UNet's attention runs fused through this processor
            denoiser.set_attn_processor(FusedAttnProcessor2_0())  # Flux's attention reads its own fused flag
        pipeline.vae.fuse_qkv_projections()
        pipeline.vae.set_attn_processor(FusedAttnProcessor2_0())
    if "compile" in speedups:
        # CUDA graphs replay a whole denoiser call for each batch shape, which removes the launch
        # overhead that bounds batch 1; on a CPU there are no graphs to capture.
        mode = "reduce-overhead" if device.startswith("cuda") and compile_backend == "inductor" else None
        compiled = torch.compile(denoiser, mode=mode, fullgraph=True, backend=compile_backend)
        setattr(pipeline, family.denoiser_name, compiled)
    if speedups:
        log.info("speedups on: %s", ", ".join(speedups))
