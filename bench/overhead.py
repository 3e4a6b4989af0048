"""Queue-path overhead: submit -> Redis -> worker -> PNG -> fetch, against a direct engine call.

Both paths make the same job with the built-in `tiny` model on the CPU, at a size where the
overhead dominates, taking turns in one run (the queue path through a private Redis and one worker
process), so the ratio holds on a noisy machine. PNG encoding is on both sides. A third path, the
worker's job runner called in this process on the same engine, separates the runner's own Redis
bookkeeping from Celery and the second process.

    python -m bench.overhead [--jobs N] [--images-per-job K] [--size 64] [--steps 2] [--json PATH]
"""

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
import uuid

TARGET_JOB_MS = 20.0  # overhead per job, p50
TARGET_IMAGE_MS = 5.0  # overhead per image beyond PNG encoding, p50
PNG_ENCODE_REPEATS = 50
WORKER_START_TIMEOUT_S = 180.0
JOB_TIMEOUT_S = 60.0
PROMPT = "a photograph of an astronaut riding a horse"
THREAD_VARS = {"OMP_NUM_THREADS": "1"}

# Rows of the table: (key in stats, label, unit).
TABLE_ROWS = [
    ("direct_ms", "direct: engine.run + PNG encode, per job", "ms"),
    ("queue_ms", "queue: submit -> wait -> fetch PNGs, per job", "ms"),
    ("overhead_job_ms", "overhead per job (queue - direct)", "ms"),
    ("overhead_image_ms", "overhead per image (per job / K)", "ms"),
    ("png_encode_image_ms", "PNG encode alone, per image", "ms"),
    ("ratio", "ratio queue / direct", "x"),
]
SPLIT_ROWS = [
    ("submit_ms", "submit (validate, served check, create, send_task)"),
    ("queue_wait_ms", "queue wait (submit returned -> worker started_at)"),
    ("worker_ms", "worker span (started_at -> finished_at)"),
    ("worker_bookkeeping_ms", "worker bookkeeping (worker span - direct)"),
    ("runner_bookkeeping_ms", "  of it without Celery: run_job in this process - direct"),
    ("detect_ms", "finish detection (finished_at -> client saw it)"),
    ("fetch_ms", "fetch (image records + PNG bytes)"),
]


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks, q in 0..100."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summarize(values: list[float]) -> dict:
    if not values:
        return {"p50": None, "p95": None, "n": 0}
    return {"p50": percentile(values, 50), "p95": percentile(values, 95), "n": len(values)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.overhead", description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=40, help="measured jobs per path (default: %(default)s)")
    parser.add_argument("--images-per-job", type=int, default=4, help="seeds per job, K (default: %(default)s)")
    parser.add_argument("--size", type=int, default=64, help="width and height (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=2, help="denoising steps (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured jobs per path first (default: %(default)s)")
    parser.add_argument(
        "--poll-ms",
        type=float,
        default=5.0,
        help="the client's status poll interval; it bounds the measured latency (default: %(default)s)",
    )
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.images_per_job < 1 or args.warmup < 0 or args.poll_ms <= 0:
        parser.error("--jobs and --images-per-job must be at least 1, --warmup at least 0, --poll-ms positive")
    return args


def environment(argv: list[str]) -> dict:
    import shlex

    import torch

    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
        "load_average": [round(x, 2) for x in os.getloadavg()],  # at the end of the run: 1, 5, 15 minutes
        "thread_env": dict(THREAD_VARS),
        "command": shlex.join(["python", "-m", "bench.overhead", *argv]),
    }


class DirectPath:
    """The engine in this process, plus the same PNG encoding the worker does."""

    def __init__(self):
        from seedgrid.worker.engine import PipelineEngine
        from seedgrid.worker.models.loading import load_pipeline

        self.engine = PipelineEngine(load_pipeline("tiny", "cpu"), "tiny", "cpu")

    def run(self, request, png_extra: dict) -> tuple[float, list[bytes], list]:
        """(seconds, PNG bytes, PIL images) of one job."""
        from seedgrid.shared.pngmeta import encode_png

        pngs, images = [], []

        def on_batch(batch, batch_images):
            for item, image in zip(batch, batch_images, strict=True):
                if image is None:
                    raise RuntimeError(f"direct path: image {item.index} came out NaN or black")
                images.append((item, image))
                pngs.append(encode_png(image, request, item, extra=png_extra))

        start = time.perf_counter()
        self.engine.run(request, request.items(), on_step=lambda *_: None, on_batch=on_batch)
        return time.perf_counter() - start, pngs, images


class QueuePath:
    """A SeedgridClient on the private Redis, waiting with a short poll interval."""

    def __init__(self, client, poll_s: float):
        self.client = client
        self.poll_s = poll_s

    def run(self, request) -> dict:
        from seedgrid.shared.job import JobState

        polls = 0

        def count(_status):
            nonlocal polls
            polls += 1

        t0 = time.perf_counter()
        job_id = self.client.submit(request)
        wall1, t1 = time.time(), time.perf_counter()
        status = self.client.wait(job_id, on_update=count, poll_seconds=self.poll_s, timeout=JOB_TIMEOUT_S)
        wall2, t2 = time.time(), time.perf_counter()
        if status.state != JobState.SUCCEEDED:
            raise RuntimeError(f"queue path: job {job_id} ended {status.state.value}: {status.error}")
        records = self.client.images(job_id)
        pngs = [self.client.image_png(job_id, record.index) for record in records]
        t3 = time.perf_counter()
        if len(pngs) != status.images_total:
            raise RuntimeError(f"queue path: job {job_id} has {len(pngs)} of {status.images_total} images")
        return {
            "job_id": job_id,
            "queue_s": t3 - t0,
            "submit_s": t1 - t0,
            "fetch_s": t3 - t2,
            "polls": polls,
            "queue_wait_s": status.started_at - wall1,
            "worker_s": status.finished_at - status.started_at,
            "detect_s": wall2 - status.finished_at,
            "images": len(pngs),
            "png_bytes": sum(map(len, pngs)),
        }


def png_encode_seconds(request, images: list, png_extra: dict, repeats: int) -> list[float]:
    """Seconds per image for encoding alone, the same images and metadata as the job's."""
    from seedgrid.shared.pngmeta import encode_png

    samples = []
    for _ in range(repeats):
        for item, image in images:
            start = time.perf_counter()
            encode_png(image, request, item, extra=png_extra)
            samples.append(time.perf_counter() - start)
    return samples


def redis_commands_per_job(client, queue: QueuePath, request) -> dict[str, int]:
    """Server-side command counts during one queue job (client and worker together, heartbeat included)."""
    client.redis.config_resetstat()
    queue.run(request)
    stats = client.redis.info("commandstats")
    counts = {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}
    for ours in ("info", "config"):
        counts.pop(ours, None)
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


class RunnerPath:
    """The worker's own job runner on this process's engine and the same Redis: no Celery, no second process."""

    def __init__(self, engine, redis_url: str):
        import redis

        from seedgrid.shared.jobstore import JobStore
        from seedgrid.worker.runtime import WorkerRuntime

        self.runtime = WorkerRuntime(
            engine=engine, store=JobStore(redis.Redis.from_url(redis_url)), name="bench-in-process"
        )

    def run(self, request) -> float:
        from seedgrid.worker.job_runner import run_job

        job_id = uuid.uuid4().hex
        self.runtime.store.create(job_id, request, "bench-in-process")
        start = time.perf_counter()
        result = run_job(self.runtime, job_id, request.model_dump(mode="json"))
        seconds = time.perf_counter() - start
        if result["state"] != "succeeded":
            raise RuntimeError(f"in-process runner: job {job_id} ended {result['state']}: {result.get('error')}")
        return seconds


def measure(args: argparse.Namespace) -> dict:
    for name, value in THREAD_VARS.items():
        os.environ[name] = value
    import torch

    torch.set_num_threads(1)
    from seedgrid.client.api import SeedgridClient
    from seedgrid.client.local import LocalWorker
    from seedgrid.shared.embedded_redis import EmbeddedRedis
    from seedgrid.shared.request import JobRequest

    request = JobRequest(
        model="tiny",
        prompts=[PROMPT],
        seeds=list(range(1, args.images_per_job + 1)),
        width=args.size,
        height=args.size,
        steps=args.steps,
    )
    worker_name = f"bench-{uuid.uuid4().hex[:6]}"
    with EmbeddedRedis() as server, tempfile.TemporaryDirectory(prefix="seedgrid-bench-") as tmp:
        log_path = os.path.join(tmp, "worker.log")
        worker = LocalWorker(
            server.url, "tiny", "cpu", log_path=log_path, extra_args=["--name", worker_name], env=dict(THREAD_VARS)
        )
        try:
            direct = DirectPath()  # loads while the worker starts
            runner = RunnerPath(direct.engine, server.url)
            with SeedgridClient(server.url, client_id="bench-overhead") as client:
                try:
                    info = client.wait_for_worker("tiny", timeout=WORKER_START_TIMEOUT_S, alive=worker.alive)
                except (RuntimeError, TimeoutError) as exc:
                    with open(log_path, errors="replace") as f:
                        raise RuntimeError(f"{exc}\nworker log:\n{f.read()[-3000:]}") from None
                png_extra = {"job_id": uuid.uuid4().hex, "worker": info.name, "vae": ""}
                queue = QueuePath(client, args.poll_ms / 1000.0)
                images: list = []

                def run_direct() -> dict:
                    seconds, _, images[:] = direct.run(request, png_extra)
                    return {"direct_s": seconds}

                paths = {
                    "direct": run_direct,
                    "queue": lambda: queue.run(request),
                    "runner": lambda: {"runner_s": runner.run(request)},
                }
                order = list(paths)
                for _ in range(args.warmup):
                    for name in order:
                        paths[name]()
                rounds = []
                for i in range(args.jobs):
                    # Rotate which path goes first, so none always follows the same other one.
                    sample = {}
                    for name in order[i % 3 :] + order[: i % 3]:
                        sample.update(paths[name]())
                    rounds.append(sample)
                png_samples = png_encode_seconds(request, images, png_extra, PNG_ENCODE_REPEATS)
                commands = redis_commands_per_job(client, queue, request)
        finally:
            worker.stop()
    return build_result(args, request, rounds, png_samples, commands)


def build_result(args, request, rounds: list[dict], png_samples: list[float], commands: dict) -> dict:
    k = args.images_per_job
    ms = 1000.0
    series = {
        "direct_ms": [r["direct_s"] * ms for r in rounds],
        "queue_ms": [r["queue_s"] * ms for r in rounds],
        "overhead_job_ms": [(r["queue_s"] - r["direct_s"]) * ms for r in rounds],
        "overhead_image_ms": [(r["queue_s"] - r["direct_s"]) * ms / k for r in rounds],
        "png_encode_image_ms": [s * ms for s in png_samples],
        "ratio": [r["queue_s"] / r["direct_s"] for r in rounds],
        "submit_ms": [r["submit_s"] * ms for r in rounds],
        "queue_wait_ms": [r["queue_wait_s"] * ms for r in rounds],
        "worker_ms": [r["worker_s"] * ms for r in rounds],
        "worker_bookkeeping_ms": [(r["worker_s"] - r["direct_s"]) * ms for r in rounds],
        "runner_bookkeeping_ms": [(r["runner_s"] - r["direct_s"]) * ms for r in rounds],
        "detect_ms": [r["detect_s"] * ms for r in rounds],
        "fetch_ms": [r["fetch_s"] * ms for r in rounds],
        "polls": [float(r["polls"]) for r in rounds],
    }
    stats = {name: summarize(values) for name, values in series.items()}
    job_p50, image_p50 = stats["overhead_job_ms"]["p50"], stats["overhead_image_ms"]["p50"]
    return {
        "config": {
            "jobs": args.jobs,
            "images_per_job": k,
            "size": args.size,
            "steps": args.steps,
            "warmup": args.warmup,
            "poll_ms": args.poll_ms,
            "model": request.model,
            "scheduler": request.scheduler,
            "guidance": request.guidance,
            "device": "cpu",
        },
        "environment": environment(args.argv),
        "stats": stats,
        "targets": {
            "overhead_job_p50_ms": {"target": TARGET_JOB_MS, "value": job_p50, "pass": job_p50 < TARGET_JOB_MS},
            "overhead_image_p50_ms": {
                "target": TARGET_IMAGE_MS,
                "value": image_p50,
                "pass": image_p50 < TARGET_IMAGE_MS,
            },
        },
        "redis_commands_per_job": commands,
        "rounds": rounds,
    }


def format_table(result: dict) -> str:
    c, env, stats, targets = result["config"], result["environment"], result["stats"], result["targets"]
    lines = [
        f"seedgrid queue-path overhead: tiny on cpu, {c['size']}x{c['size']}, {c['steps']} steps, "
        f"{c['images_per_job']} images per job, {c['jobs']} jobs per path after {c['warmup']} warm-up, "
        "paths taken in turn (direct, queue, in-process runner)",
        f"OMP_NUM_THREADS=1 and torch threads 1 in this process and the worker; client poll interval "
        f"{c['poll_ms']:g} ms (bounds the finish detection)",
        f"{env['cpus']} CPUs (load average {env['load_average'][0]:g} at the end), python {env['python']}, "
        f"torch {env['torch']}",
        "",
        f"{'':60} {'p50':>9} {'p95':>9}",
    ]

    def row(label, key, unit):
        s = stats[key]
        fmt = "{:8.2f}x" if unit == "x" else "{:9.2f}"
        lines.append(f"{label:60} {fmt.format(s['p50']):>9} {fmt.format(s['p95']):>9}")

    for key, label, unit in TABLE_ROWS:
        row(label + (f" ({unit})" if unit == "ms" else ""), key, unit)
    lines += ["", "where the overhead goes (ms):"]
    for key, label in SPLIT_ROWS:
        if stats[key]["n"]:
            row("  " + label, key, "ms")
    row("  status polls per job", "polls", "")
    commands = result["redis_commands_per_job"]
    lines.append(
        "  Redis commands in one queue job: "
        + (", ".join(f"{n} {c2}" for c2, n in commands.items()) or "(none counted)")
    )
    lines.append("")
    for name, label in (
        ("overhead_job_p50_ms", "overhead per job p50"),
        ("overhead_image_p50_ms", "overhead per image p50"),
    ):
        t = targets[name]
        lines.append(f"{label:28} {t['value']:8.2f} ms  target < {t['target']:g} ms  {'PASS' if t['pass'] else 'MISS'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    args.argv = argv
    started = time.perf_counter()
    result = measure(args)
    result["environment"]["bench_seconds"] = round(time.perf_counter() - started, 1)
    print(format_table(result), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
