"""bench/gpu.py per model family: which model, size, steps and scheduler each runs, and how both sides get it.

    sd     SD1.5 (bench/sd15_configs.py), 512x512, DPM-Solver++ 20 steps, guidance 7.5, batch 1..32
    sdxl   SDXL base 1.0 (bench/family_configs.py), 1024x1024, Euler 20 steps, guidance 5, batch 1..8
    flux   FLUX.1-schnell (bench/family_configs.py), 1024x1024, flow-matching Euler 4 steps, no guidance, batch 1..8

Each real model is random weights made on the device; on a CPU each family has its tiny built-in model.
"""

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class FamilyRun:
    model: str  # the real architecture, random weights
    tiny: str  # the built-in model of this family (CPU rehearsal, tests)
    size: int
    steps: int
    guidance: float
    batches: str
    scheduler: str  # seedgrid's name, for the engine
    scheduler_label: str  # what both sides run
    stock_dtype: torch.dtype  # on CUDA


FAMILY_RUNS = {
    "sd": FamilyRun("sd15", "tiny", 512, 20, 7.5, "1,4,8,16,32", "dpm++_2m", "DPM-Solver++ (2M)", torch.float16),
    # The pipeline's own scheduler (Euler) and call default guidance (5.0); any guidance > 1 costs the same.
    "sdxl": FamilyRun("sdxl", "tiny-xl", 1024, 20, 5.0, "1,2,4,8", "euler", "Euler", torch.float16),
    # schnell: 4 steps, no guidance embedding (the value is ignored), bfloat16 as Black Forest Labs advise.
    "flux": FamilyRun(
        "flux-schnell", "tiny-flux", 1024, 4, 0.0, "1,2,4,8", "euler", "flow-matching Euler", torch.bfloat16
    ),
}
MODELS = {run.model: family for family, run in FAMILY_RUNS.items()} | {
    run.tiny: family for family, run in FAMILY_RUNS.items()
}
ENGINE_NAMES = {"sd15": "sd15-random", "sdxl": "sdxl-random", "flux-schnell": "flux-schnell-random"}

# Figures from elsewhere, printed beside SDXL's for comparison; none was measured by this benchmark.
SDXL_ANCHORS = {
    "source": "figures published elsewhere, as the model-families issue quotes them",
    "h100_it_per_s": {"stable-fast": 21.6, "torch.compile": 18.5, "stock diffusers": 14.9},
    "mlperf_h200_images_per_s_per_gpu": 2.18,
    "mlperf_note": "MLPerf Inference SDXL, 20 steps, TensorRT FP8",
}

FAMILY_NOTES = {
    "sdxl": "sdxl: published SDXL base 1.0 configs (bench/family_configs.py), seeded random weights made on the "
    "device, the tiny model's byte-level tokenizer for both CLIP encoders (77 tokens); both sides run Euler (the "
    "pipeline's own scheduler) with the VAE upcast to float32 as its config asks",
    "flux": "flux: published FLUX.1-schnell configs (bench/family_configs.py: 11.9 B transformer, 4.76 B T5-XXL "
    "encoder), seeded random weights made on the device in bfloat16, a unigram T5 tokenizer padding to 512 tokens "
    "(both sides encode the same length: the stock call is given max_sequence_length as the engine sets it; tiny-flux: "
    "32)",
}


def resolve(args) -> None:
    """Fill the family's defaults into what was not given, and check model and family agree."""
    run = FAMILY_RUNS[args.family]
    args.model = args.model or run.model
    if MODELS[args.model] != args.family:
        raise ValueError(f"--model {args.model} is not of --family {args.family}")
    for name in ("size", "steps", "guidance", "batches"):
        if getattr(args, name) is None:
            setattr(args, name, getattr(run, name))
    args.scheduler = run.scheduler


def build_pipeline(model: str, dtype: torch.dtype, device: str):
    """The real architecture with random weights made on `device`, or a tiny built-in model moved there."""
    if model == "sd15":
        from bench.sd15_configs import build_sd15_random

        return build_sd15_random(dtype, device)
    if model == "sdxl":
        from bench.family_configs import build_sdxl_random

        return build_sdxl_random(dtype, device)
    if model == "flux-schnell":
        from bench.family_configs import build_flux_schnell_random

        return build_flux_schnell_random(dtype, device)
    from seedgrid.worker.models.loading import BUILT_IN

    pipe = BUILT_IN[model]()
    return (pipe if dtype == torch.float32 else pipe.to(dtype=dtype)).to(device)


def stock_dtype(args) -> torch.dtype:
    return FAMILY_RUNS[args.family].stock_dtype if args.device == "cuda" else torch.float32


def setup_stock_scheduler(pipe, args) -> None:
    """SD: the guide's DPM-Solver++ from the model's scheduler config; SDXL and Flux keep their own."""
    if args.family == "sd":
        from diffusers import DPMSolverMultistepScheduler

        pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)


def stock_extra(pipe, args) -> dict:
    """Flux: the T5 length the engine encodes (FLUX.1's tokenizer: 512, the pipeline's own default)."""
    if args.family == "flux":
        from seedgrid.worker.families.flux import MAX_T5_TOKENS

        return {"max_sequence_length": min(MAX_T5_TOKENS, pipe.tokenizer_2.model_max_length)}
    return {}


def set_up_like_load_pipeline(pipe, device: str):
    """What seedgrid.worker.models.loading.load_pipeline does after loading a real model, step for step."""
    from diffusers.models.attention_processor import AttnProcessor2_0

    from seedgrid.worker.families import family_of

    family_of(pipe).prepare(pipe)
    pipe.set_progress_bar_config(disable=True)
    pipe = pipe.to(device)
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        if hasattr(pipe, "unet"):  # Flux's transformer has its own SDPA attention
            pipe.unet.set_attn_processor(AttnProcessor2_0())
    return pipe


def module_bytes(pipe) -> int:
    """Bytes of every network's parameters (UNet or transformer, VAE, text encoders)."""
    modules = [m for m in pipe.components.values() if isinstance(m, torch.nn.Module)]
    return sum(p.numel() * p.element_size() for m in modules for p in m.parameters())


def anchor_lines(report: dict) -> list[str]:
    """SDXL: the anchors from elsewhere, and this run's batch-1 it/s and best images/s beside them."""
    if report["args"].get("family") != "sdxl":
        return []
    a = SDXL_ANCHORS
    lines = [
        f"anchors from elsewhere, NOT measured here ({a['source']}):",
        "  SDXL on H100, it/s: " + ", ".join(f"{k} {v}" for k, v in a["h100_it_per_s"].items()),
        f"  SDXL on H200: {a['mlperf_h200_images_per_s_per_gpu']} images/s per GPU ({a['mlperf_note']})",
    ]
    for row in report["batches"]:
        if row["batch"] == 1:
            ok = {s: m for s, m in row.items() if isinstance(m, dict) and m.get("status") == "ok"}
            lines.append(
                "  measured here at batch 1, it/s of the whole call (prompt encoding and VAE decode included): "
                + ", ".join(f"{s} {m['unet_image_steps_per_s']:.1f}" for s, m in ok.items())
            )
    best = {}
    for row in report["batches"]:
        for side, m in row.items():
            if isinstance(m, dict) and m.get("status") == "ok":
                best[side] = max(best.get(side, 0.0), m["images_per_s"])
    if best:
        lines.append(
            "  measured here, best images/s over the batch sizes: " + ", ".join(f"{s} {v:.2f}" for s, v in best.items())
        )
    return lines
