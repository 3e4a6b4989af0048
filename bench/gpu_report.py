"""bench/gpu.py's report: the machine it ran on, the table it prints and the JSON it writes."""

import contextlib
import datetime
import json
import os
import platform
from pathlib import Path

import torch

GIB = 2**30


def environment(args) -> dict:
    import diffusers
    import transformers

    env = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if args.device == "cuda":
        props = torch.cuda.get_device_properties(0)
        env.update(
            device_name=props.name,
            gpu_memory_gib=props.total_memory / GIB,
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
            multiprocessors=props.multi_processor_count,
        )
    else:
        env["device_name"] = env["cpu"]
    return env


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


NOTES = [
    "s/img: median of the timed calls at that batch size divided by the batch; a call is end to end "
    "(prompt encoding, denoising, VAE decode, PIL images; PNG encoding excluded); the first call at each size is "
    "warm-up (first_s in the JSON)",
    "UNet steps/s: images x steps / seconds of the whole call (image-steps; with guidance > 1 each is one UNet "
    "evaluation of 2 samples: unet_evals_per_s in the JSON counts samples)",
    "peak GiB: torch.cuda.max_memory_allocated during the call, less what was allocated before it, plus this "
    "side's own weights (both pipelines stay loaded)",
    "% of limit: FLOP per image (issue's figure: 34.7 TFLOP at 512x512, 20 steps, CFG) x images/s over 990 "
    "TFLOP/s (H200 datasheet, dense fp16) and 790 TFLOP/s (bf16 matrix product measured on an "
    "H200, the issue's figure); sd15 on cuda only",
    "stock: the guide's setup: float16 on cuda (Flux: bfloat16; float32 on cpu), for SD DPMSolverMultistepScheduler"
    ".from_config (SDXL, Flux: the pipeline's own scheduler), one torch.Generator per image on the device, diffusers' "
    "default attention (SDPA), PyTorch's default TF32 flags",
    "engine: seedgrid's PipelineEngine over the model as worker/models/loading.load_pipeline sets it up (SDPA "
    "processor set explicitly, TF32 on for cuda), noise from one CPU generator per image, "
    "NaN/black check on output, no previews",
    "neither side has a safety checker (the guide's from_pretrained pipeline would also run one on each image)",
    "sd15: published SD1.5 configs, seeded random weights made on the device (load time is that build, not "
    "reading a checkpoint), the tiny model's byte-level tokenizer (77 tokens like CLIP's)",
]


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(report: dict) -> str:
    sides = report.get("sides", ["stock", "engine"])
    lines = [
        "| batch | side | s/img | img/s | UNet steps/s | peak GiB | % of 990 | % of 790 | x stock |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report["batches"]:
        for name in sides:
            m = row.get(name, {})
            ratio = _fmt(row.get("over_stock", {}).get(name), ".3f") if name != "stock" else ""
            if m.get("status") != "ok":
                lines.append(f"| {row['batch']} | {name} | {m.get('status', '-')} | | | | | | {ratio} |")
                continue
            pct = [
                ("n/a" if m[k] is None else f"{100 * m[k]:.1f}%")
                for k in ("fraction_of_datasheet", "fraction_of_measured")
            ]
            lines.append(
                f"| {row['batch']} | {name} | {m['s_per_image']:.4f} | {m['images_per_s']:.2f} | "
                f"{m['unet_image_steps_per_s']:.1f} | {_fmt(m['peak_own_gib'], '.2f')} | "
                f"{pct[0]} | {pct[1]} | {ratio} |"
            )
    probe = report.get("largest_engine_batch") or {}
    lines += [
        "",
        "load s: " + ", ".join(f"{n} {_fmt(report['load_s'].get(n), '.2f')}" for n in sides),
        "warm-up s (first call, batch 1): " + ", ".join(f"{n} {_fmt(report['warmup_s'].get(n), '.2f')}" for n in sides),
        "largest batch the engine picks itself: "
        + (
            f"{probe['picked']} (max_batch {probe['asked']}, a {probe['images']}-image job, "
            f"{probe['s_per_image']:.4f} s/img)"
            if "picked" in probe
            else probe.get("skipped", "not measured")
        ),
    ]
    bad = sum(row[n].get("bad_images", 0) for row in report["batches"] for n in sides if n != "stock" and n in row)
    if bad:
        lines.append(f"engine images that came out NaN or black (decoded again in float32): {bad}")
    lines += [f"skipped: {s}" for s in report["skipped"]]
    return "\n".join(lines)


def write_json(path: Path | None, report: dict) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(report, indent=2))
    tmp.replace(path)
