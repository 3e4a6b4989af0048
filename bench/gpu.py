"""Stock diffusers (set up as the guide does) against seedgrid's engine, side by side on one device.

    python -m bench.gpu --model sd15 --device cuda --json out/gpu.json     (one H200: bench/gpu.sh)
    python -m bench.gpu --family sdxl --device cuda   (SDXL base 1.0 at 1024x1024; --family flux: FLUX.1-schnell)
    python -m bench.gpu --model tiny --device cpu --batches 1,2 --steps 2 --size 64   (CI's path)

`sd15` is Stable Diffusion 1.5's architecture from its published configs with random weights
(bench/sd15_configs.py; speed does not depend on the weights' values), so nothing is downloaded; `--family
sdxl` and `--family flux` do the same for SDXL and FLUX.1-schnell at their own sizes and steps (bench/gpu_families.py).
For each batch size both sides run interleaved: one warm-up call at that size (reported apart),
then `--repeats` timed calls, alternating which side goes first. A call is end to end: prompt encoding, the
denoising loop, VAE decode and conversion to PIL images, on both sides; PNG encoding is left out.
"""

import argparse
import contextlib
import gc
import statistics
import sys
import time
from pathlib import Path

import torch

from bench import gpu_families
from bench.gpu_report import GIB, NOTES, environment, format_table, write_json
from seedgrid.shared.limits import MAX_SEEDS

PROMPT = "portrait photo of a old warrior chief"
DATASHEET_TFLOPS = 990.0  # H200 dense fp16/bf16, vendor datasheet
MEASURED_TFLOPS = 790.0  # bf16 8192^3 matrix product measured on an H200 (the performance issue's figure)
UNET_PASS_TFLOP = 0.80  # one SD1.5 UNet pass of one sample at 64x64 latents
DECODE_AND_TEXT_TFLOP = 2.7  # VAE decoder at 512x512 plus the text encoder: 34.7 - 20 steps x 2 x 0.80


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__.split("\n\n")[0])
    p.add_argument("--family", choices=tuple(gpu_families.FAMILY_RUNS), default="sd")
    p.add_argument("--model", choices=tuple(gpu_families.MODELS), help="default: the family's real architecture")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    p.add_argument("--batches", help="comma-separated batch sizes, smallest first (default: the family's)")
    p.add_argument("--steps", type=int, help="default: the family's (sd, sdxl 20; flux 4)")
    p.add_argument("--size", type=int, help="default: the family's (sd 512; sdxl, flux 1024)")
    p.add_argument("--guidance", type=float, help="default: the family's (sd 7.5, sdxl 5, flux 0)")
    p.add_argument("--repeats", type=int, default=3, help="timed calls per side and batch size")
    p.add_argument(
        "--probe-batch",
        type=int,
        default=64,
        help="engine.max_batch for the job that shows the batch the engine picks itself (0: skip)",
    )
    p.add_argument(
        "--time-budget",
        type=float,
        default=0.0,
        help="seconds for the whole run; measurements that would not end in time are skipped (0: none)",
    )
    p.add_argument(
        "--variants",
        default="",
        help="more engine sides, each with speedups (worker/speedups.py) on, joined by +: e.g. "
        "channels_last,fuse_qkv,compile,channels_last+fuse_qkv+compile (default: none)",
    )
    p.add_argument(
        "--memory",
        choices=("full", "model-offload", "sequential-offload"),
        default="full",
        help="how the engine side sits in GPU memory (seedgrid worker --memory; offload modes need CUDA)",
    )
    p.add_argument("--json", type=Path, help="write the full results here (rewritten after each batch size)")
    args = p.parse_args(argv)
    try:
        gpu_families.resolve(args)
    except ValueError as exc:
        p.error(str(exc))
    args.batches = [int(b) for b in args.batches.split(",") if b.strip()]
    from seedgrid.worker.speedups import parse_speedups

    try:
        args.variants = [parse_speedups(v.replace("+", ",")) for v in args.variants.split(",") if v.strip()]
    except ValueError as exc:
        p.error(str(exc).replace("--speedups", "--variants"))
    if args.repeats < 1 or not args.batches or min(args.batches) < 1:
        p.error("--repeats and every batch size must be at least 1")
    if not 0 <= args.probe_batch <= MAX_SEEDS:
        p.error(f"--probe-batch: 0..{MAX_SEEDS} (a job's seed limit)")
    if args.memory != "full" and args.device != "cuda":
        p.error(f"--memory {args.memory}: offloading needs --device cuda")
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: torch sees no CUDA device")
    return args


# ---- the two sides -------------------------------------------------------------------------


build_pipeline = gpu_families.build_pipeline


def load_stock(args):
    """The guide's setup: float16 on CUDA (Flux: bfloat16; float32 on a CPU); SD: DPM-Solver++ from its config."""
    pipe = build_pipeline(args.model, gpu_families.stock_dtype(args), args.device)
    gpu_families.setup_stock_scheduler(pipe, args)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def load_engine(args, speedups: tuple[str, ...] = ()):
    """seedgrid's engine; the tiny models go through seedgrid.worker.models.loading.load_pipeline itself."""
    from seedgrid.worker.engine import PipelineEngine
    from seedgrid.worker.models.loading import BUILT_IN, dtype_for, load_pipeline
    from seedgrid.worker.speedups import apply_speedups

    if args.model in BUILT_IN:
        pipe = load_pipeline(args.model, args.device)
        apply_speedups(pipe, speedups, args.device)
        return PipelineEngine(pipe, args.model, args.device)
    pipe = build_pipeline(args.model, dtype_for(args.device, args.family), args.device)
    pipe = gpu_families.set_up_like_load_pipeline(pipe, args.device)
    if args.memory != "full":  # as `seedgrid worker --memory` places it: offloaded, the VAE tiled
        from seedgrid.worker.memory_plan import MemoryPlan, apply_plan

        pipe = apply_plan(pipe, MemoryPlan(args.memory, True, f"{args.memory}: asked for"), args.device)
    apply_speedups(pipe, speedups, args.device)
    return PipelineEngine(pipe, gpu_families.ENGINE_NAMES[args.model], args.device)


def stock_call(pipe, args, batch: int) -> dict:
    generators = [torch.Generator(args.device).manual_seed(i) for i in range(batch)]
    images = pipe(
        prompt=[PROMPT] * batch,
        generator=generators,
        num_inference_steps=args.steps,
        guidance_scale=args.guidance,
        height=args.size,
        width=args.size,
        output_type="pil",
        **gpu_families.stock_extra(pipe, args),
    ).images
    return {"images": len(images)}


def engine_call(engine, args, batch: int, max_batch: int | None = None) -> dict:
    from seedgrid.shared.request import JobRequest

    engine.max_batch = max_batch or batch
    request = JobRequest(
        model=engine.model_name,
        prompts=[PROMPT],
        seeds=list(range(batch)),
        width=args.size,
        height=args.size,
        steps=args.steps,
        guidance=args.guidance,
        scheduler=args.scheduler,
    )
    images = []
    engine.run(request, request.items(), on_step=lambda *_: None, on_batch=lambda _, imgs: images.extend(imgs))
    picked = engine.limits.start((args.size, args.size), engine.max_batch)  # the batch that fit at this size
    return {"images": len(images), "bad_images": sum(i is None for i in images), "max_batch_after": picked}


class Side:
    """One contestant: how to call it, its TF32 flags, and what loading and warming it cost."""

    def __init__(self, name: str, obj, call, tf32: tuple[bool, bool]):
        self.name, self.obj, self.call, self.tf32 = name, obj, call, tf32
        self.load_s = self.warmup_s = None
        pipe = obj.pipeline if hasattr(obj, "pipeline") else obj
        self.weights_bytes = gpu_families.module_bytes(pipe)
        self.failed_at: int | None = None  # batch size that ran out of memory

    @contextlib.contextmanager
    def flags(self):
        """TF32 flags are process-wide; each side runs with its own (stock: PyTorch's defaults)."""
        old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = self.tf32
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


# ---- measuring -----------------------------------------------------------------------------


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def timed_call(side: Side, args, batch: int, **kw) -> dict:
    """One call, synchronized on both ends, with its peak memory; OOM comes back as a record."""
    cuda = args.device == "cuda"
    gc.collect()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    sync(args.device)
    before = torch.cuda.memory_allocated() if cuda else None
    start = time.perf_counter()
    try:
        with side.flags():
            out = side.call(side.obj, args, batch, **kw)
        sync(args.device)
    except Exception as exc:
        if not is_oom(exc):
            raise
        if cuda:
            torch.cuda.empty_cache()
        return {"oom": True, "error": str(exc).splitlines()[0][:300]}
    out["seconds"] = time.perf_counter() - start
    if cuda:
        peak = torch.cuda.max_memory_allocated()
        out["peak_gib"] = peak / GIB
        out["peak_own_gib"] = (peak - before + side.weights_bytes) / GIB
    return out


def flop_per_image(args) -> float | None:
    """From the issue's figures (34.7 TFLOP at 512x512, 20 steps, CFG); scaled with steps and pixels."""
    if args.model != "sd15" or args.device != "cuda":
        return None
    passes = 2 if args.guidance > 1 else 1
    return (args.steps * passes * UNET_PASS_TFLOP + DECODE_AND_TEXT_TFLOP) * 1e12 * (args.size / 512) ** 2


def summarize(calls: list[dict], batch: int, args) -> dict:
    times = [c["seconds"] for c in calls[1:]]  # the first call at a new size is warm-up
    median = statistics.median(times)
    cfg = 2 if args.guidance > 1 else 1
    out = {
        "status": "ok",
        "first_s": calls[0]["seconds"],
        "times_s": times,
        "seconds": median,
        "s_per_image": median / batch,
        "images_per_s": batch / median,
        "unet_image_steps_per_s": batch * args.steps / median,
        "unet_evals_per_s": cfg * batch * args.steps / median,
        "peak_gib": max((c["peak_gib"] for c in calls if "peak_gib" in c), default=None),
        "peak_own_gib": max((c["peak_own_gib"] for c in calls if "peak_own_gib" in c), default=None),
    }
    if "bad_images" in calls[0]:  # engine only
        out["bad_images"] = max(c["bad_images"] for c in calls)
        out["max_batch_after"] = min(c["max_batch_after"] for c in calls)
    flop = flop_per_image(args)
    out["fraction_of_datasheet"] = flop * out["images_per_s"] / (DATASHEET_TFLOPS * 1e12) if flop else None
    out["fraction_of_measured"] = flop * out["images_per_s"] / (MEASURED_TFLOPS * 1e12) if flop else None
    return out


def measure_batch(sides: list[Side], args, batch: int) -> dict:
    calls = {s.name: [] for s in sides}
    result = {"batch": batch}
    for round_ in range(1 + args.repeats):
        order = sides if round_ % 2 == 0 else sides[::-1]
        for side in order:
            if side.failed_at is not None:
                continue
            call = timed_call(side, args, batch)
            if call.get("oom"):
                side.failed_at = batch
                result[side.name] = {"status": "oom", "error": call["error"]}
                continue
            calls[side.name].append(call)
    for side in sides:
        if side.name in result:
            continue
        if side.failed_at is not None and side.failed_at < batch:
            result[side.name] = {"status": "skipped", "reason": f"out of memory at batch {side.failed_at}"}
        else:
            result[side.name] = summarize(calls[side.name], batch, args)
    stock = result.get("stock", {})
    result["over_stock"] = {
        s.name: result[s.name]["images_per_s"] / stock["images_per_s"]
        for s in sides
        if s.name != "stock" and stock.get("status") == "ok" and result[s.name].get("status") == "ok"
    }
    if "engine" in result["over_stock"]:
        result["engine_over_stock"] = result["over_stock"]["engine"]
    return result


class Budget:
    def __init__(self, seconds: float):
        self.seconds, self.start = seconds, time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def allows(self, estimate_s: float) -> bool:
        return not self.seconds or self.elapsed() + estimate_s <= self.seconds


def slowest_s_per_image(results: list[dict]) -> float | None:
    """Seconds per image of the slower side at the last batch size measured: an upper bound for larger ones."""
    for row in reversed(results):
        values = [side["s_per_image"] for side in row.values() if isinstance(side, dict) and side.get("status") == "ok"]
        if values:
            return max(values)
    return None


def log(message: str) -> None:
    print(f"[bench.gpu] {message}", flush=True)


# ---- main ----------------------------------------------------------------------------------


def run(args) -> dict:
    budget = Budget(args.time_budget)
    import bench.family_configs  # noqa: F401  imports first, so neither side's load time carries them
    import bench.sd15_configs  # noqa: F401
    import seedgrid.worker.engine  # noqa: F401
    import seedgrid.worker.models.loading  # noqa: F401

    report = {
        "schema": "seedgrid-bench-gpu/1",
        "complete": False,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "environment": environment(args),
        "settings": {
            "prompt": PROMPT,
            "scheduler": gpu_families.FAMILY_RUNS[args.family].scheduler_label,
            "engine_scheduler": args.scheduler,
            "output": "PIL images, PNG encoding excluded",
            "flop_per_image": flop_per_image(args),
            "datasheet_tflops": DATASHEET_TFLOPS,
            "measured_tflops": MEASURED_TFLOPS,
        },
        "sides": [],
        "load_s": {},
        "warmup_s": {},
        "weights_gib": {},
        "batches": [],
        "largest_engine_batch": None,
        "skipped": [],
        "notes": NOTES + [n for f, n in gpu_families.FAMILY_NOTES.items() if f == args.family],
        "anchors": gpu_families.SDXL_ANCHORS if args.family == "sdxl" else None,
    }
    if args.device == "cuda":
        torch.zeros(1, device="cuda")  # CUDA context first, so neither side's load time carries it
    defaults = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    sides = []
    contestants = [("stock", load_stock, stock_call, defaults), ("engine", load_engine, engine_call, (True, True))]
    for speedups in args.variants:
        contestants.append(
            ("engine+" + "+".join(speedups), lambda a, sp=speedups: load_engine(a, sp), engine_call, (True, True))
        )
    for name, load, call, tf32 in contestants:
        start = time.perf_counter()
        obj = load(args)
        sync(args.device)
        load_s = time.perf_counter() - start
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = defaults
        side = Side(name, obj, call, tf32 if args.device == "cuda" else defaults)
        side.load_s = report["load_s"][name] = load_s
        report["weights_gib"][name] = side.weights_bytes / GIB
        report["sides"].append(name)
        sides.append(side)
        log(f"{name}: loaded in {load_s:.2f} s")
    for side in sides:
        first = timed_call(side, args, 1)
        if first.get("oom"):
            raise RuntimeError(f"{side.name}: out of memory at batch 1: {first['error']}")
        side.warmup_s = report["warmup_s"][side.name] = first["seconds"]
        log(f"{side.name}: warm-up call (batch 1) {first['seconds']:.2f} s")

    for batch in args.batches:
        per_image = slowest_s_per_image(report["batches"])
        estimate = 1.15 * per_image * batch * (1 + args.repeats) * len(sides) if per_image else 0.0
        if not budget.allows(estimate):
            report["skipped"].append(
                f"batch {batch}: needs about {estimate:.0f} s, "
                f"{args.time_budget - budget.elapsed():.0f} s of the time budget left"
            )
            log(report["skipped"][-1])
            continue
        row = measure_batch(sides, args, batch)
        report["batches"].append(row)
        log(
            f"batch {batch}: "
            + ", ".join(
                f"{s.name} {row[s.name]['s_per_image']:.4f} s/img"
                if row[s.name]["status"] == "ok"
                else f"{s.name} {row[s.name]['status']}"
                for s in sides
            )
        )
        write_json(args.json, report)

    report["largest_engine_batch"] = probe_engine_batch(sides[1], args, budget, report)
    report["elapsed_s"] = budget.elapsed()
    report["complete"] = True
    write_json(args.json, report)
    return report


def probe_engine_batch(engine: Side, args, budget: Budget, report: dict) -> dict:
    """The engine starts at max_batch = probe and halves on out-of-memory; what it ends at is its pick."""
    if args.probe_batch <= 0:
        return {"skipped": "not asked (--probe-batch 0)"}
    ok = [r["engine"]["s_per_image"] for r in report["batches"] if r.get("engine", {}).get("status") == "ok"]
    estimate = 1.3 * ok[-1] * args.probe_batch if ok else 0.0
    if not budget.allows(estimate):
        reason = f"needs about {estimate:.0f} s, {args.time_budget - budget.elapsed():.0f} s of the time budget left"
        report["skipped"].append(f"largest-batch probe: {reason}")
        return {"skipped": reason}
    call = timed_call(engine, args, args.probe_batch, max_batch=args.probe_batch)
    if call.get("oom"):
        return {"asked": args.probe_batch, "skipped": f"out of memory even at batch 1: {call['error']}"}
    log(f"largest-batch probe: engine picked {call['max_batch_after']} of {args.probe_batch}")
    return {
        "asked": args.probe_batch,
        "picked": call["max_batch_after"],
        "images": call["images"],
        "bad_images": call["bad_images"],
        "seconds": call["seconds"],
        "s_per_image": call["seconds"] / args.probe_batch,
        "peak_own_gib": call.get("peak_own_gib"),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    report = run(args)
    print()
    print(
        f"{args.model} ({args.family}) on {report['environment']['device_name']} ({args.device}), "
        f"{args.size}x{args.size}, {args.steps} steps {report['settings']['scheduler']}, guidance {args.guidance}, "
        f"{args.repeats} timed calls per cell"
    )
    print(format_table(report))
    for line in gpu_families.anchor_lines(report):
        print(line)
    for note in report["notes"]:
        print(f"- {note}")
    if args.json:
        print(f"full results: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
