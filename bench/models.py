"""One worker, two models, one on the device at a time: reading the loaded model's queue first, against round robin.

    python -m bench.models [--jobs 32] [--streak 8] [--simulated LOAD_SECONDS] [--json PATH]

The tiny SD and SDXL models, saved as diffusers folders, served on the CPU by `seedgrid worker --models DIR --keep 1
--no-merge`. Single-image jobs alternating between the two models are submitted at once; for each policy
("affinity": SEEDGRID_MODEL_STREAK=<streak>, "round robin": SEEDGRID_MODEL_STREAK=0) it prints the model loads,
images per second and the longest queue wait, measured side by side in one run. `--simulated` serves two
SIMULATED models instead (no torch: a load takes LOAD_SECONDS, an image 0.01 s), to check the scheduling quickly.
"""

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

from bench.fleet import stop_fleet
from seedgrid.client.api import SeedgridClient
from seedgrid.client.local import LocalWorker
from seedgrid.shared.embedded_redis import EmbeddedRedis
from seedgrid.shared.job import JobState
from seedgrid.shared.request import JobRequest
from seedgrid.shared.workers import WorkerInfo

MODELS = ("bm-sd", "bm-xl")  # bm-sd, first by name, is the one loaded at start
SIMULATED = ("simulated-a", "simulated-b")


def make_models(folder: Path) -> None:
    from seedgrid.worker.models.tiny import build_tiny_pipeline
    from seedgrid.worker.models.tiny_xl import build_tiny_xl_pipeline

    build_tiny_pipeline().save_pretrained(folder / MODELS[0])
    build_tiny_xl_pipeline().save_pretrained(folder / MODELS[1])


def worker_args(folder: Path, simulated: float | None) -> list[str]:
    if simulated is None:
        return ["--models", str(folder), "--keep", "1", "--no-merge"]
    models = [arg for model in SIMULATED for arg in ("--model", model)]
    return [*models, "--keep", "1", "--no-merge", "--simulated-seconds", "0.01", "--simulated-load-seconds",
            str(simulated)]  # fmt: skip


def job(model: str, seed: int) -> JobRequest:
    return JobRequest(model=model, prompts=[f"a lighthouse, {model}"], seeds=[seed], width=64, height=64, steps=2)


def heartbeat(client: SeedgridClient, worker: LocalWorker, name: str, jobs_done: int = 0) -> WorkerInfo:
    """The worker's heartbeat once it counts `jobs_done` jobs (one comes every 2 s)."""
    deadline = time.monotonic() + 120
    while True:
        found = [w for w in client.workers() if w.name == name and w.jobs_done >= jobs_done]
        if found:
            return found[0]
        if time.monotonic() > deadline or not worker.alive():
            raise RuntimeError(f"worker {name}: no heartbeat with {jobs_done} jobs done ({worker.last_words()})")
        time.sleep(0.2)


def measure(client: SeedgridClient, worker: LocalWorker, name: str, jobs: int, models: tuple[str, str]) -> dict:
    before = heartbeat(client, worker, name, jobs_done=1)  # after the warm-up job
    started = time.perf_counter()
    ids = [client.submit(job(models[(i + 1) % 2], i)) for i in range(jobs)]  # the second first: not loaded
    statuses = [client.wait(j, poll_seconds=0.02, timeout=600) for j in ids]
    elapsed = time.perf_counter() - started
    after = heartbeat(client, worker, name, jobs_done=before.jobs_done + jobs)
    return {
        "jobs": jobs,
        "succeeded": sum(s.state == JobState.SUCCEEDED for s in statuses),
        "model_loads": after.model_loads - before.model_loads,
        "seconds": elapsed,
        "images_per_second": jobs / elapsed,
        "longest_wait_s": max(s.started_at - s.submitted_at for s in statuses),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=32)
    parser.add_argument("--streak", type=int, default=8, help="SEEDGRID_MODEL_STREAK of the affinity run")
    parser.add_argument("--simulated", type=float, metavar="LOAD_SECONDS", help="simulated models (no torch)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    models = MODELS if args.simulated is None else SIMULATED
    policies = {"affinity": args.streak, "round robin": 0}
    device = "cpu" if args.simulated is None else f"simulated ({args.simulated:g} s per load)"
    results: dict = {"jobs": args.jobs, "streak": args.streak, "device": device, "policies": []}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        folder = Path(tmp)
        if args.simulated is None:
            make_models(folder)
        runs: list[tuple[str, int, SeedgridClient, LocalWorker, str]] = []
        try:
            # Both workers boot and warm up together; the timed runs come one after the other.
            for policy, streak in policies.items():
                url = stack.enter_context(EmbeddedRedis()).url
                name = f"bench-models-{streak}-{uuid.uuid4().hex[:4]}"
                client = stack.enter_context(SeedgridClient(url))
                worker = LocalWorker(
                    url,
                    "",
                    "cpu" if args.simulated is None else None,
                    log_path=str(folder / f"{name}.log"),
                    extra_args=[*worker_args(folder, args.simulated), "--name", name],
                    env={"SEEDGRID_MODEL_STREAK": str(streak)},
                )
                runs.append((policy, streak, client, worker, name))
            for _, _, client, worker, name in runs:
                heartbeat(client, worker, name)  # online: it serves both models, so submit accepts them
            warm = [client.submit(job(models[0], 10_000)) for _, _, client, _, _ in runs]
            for (_, _, client, worker, _), job_id in zip(runs, warm, strict=True):
                if client.wait(job_id, timeout=300).state != JobState.SUCCEEDED:
                    raise RuntimeError(f"the warm-up job failed: {client.status(job_id).error or worker.last_words()}")
            for policy, streak, client, worker, name in runs:
                row = {"policy": policy, "streak": streak, **measure(client, worker, name, args.jobs, models)}
                results["policies"].append(row)
        finally:
            stop_fleet([run[3] for run in runs])
    affinity, round_robin = results["policies"]
    results["images_per_second_ratio"] = affinity["images_per_second"] / round_robin["images_per_second"]
    results["loads_ratio"] = affinity["model_loads"] / max(1, round_robin["model_loads"])
    served = "--models (tiny SD + tiny SDXL)" if args.simulated is None else f"two {device} models"
    print(
        f"One worker, {served} --keep 1 --no-merge, {args.jobs} single-image jobs "
        "alternating between the models, 64x64, 2 steps, submitted at once"
    )
    print(f"\n{'policy':<16} {'loads':>5} {'seconds':>8} {'images/s':>9} {'longest wait (s)':>17}")
    for row in results["policies"]:
        label = f"{row['policy']} ({row['streak']})" if row["streak"] else row["policy"]
        print(
            f"{label:<16} {row['model_loads']:>5} {row['seconds']:>8.2f} {row['images_per_second']:>9.2f} "
            f"{row['longest_wait_s']:>17.2f}"
        )
    print(
        f"\naffinity / round robin: images/s {results['images_per_second_ratio']:.2f}x, "
        f"loads {results['loads_ratio']:.1%}"
    )
    if args.simulated is None:
        print(
            "Tiny models on the CPU: a model load here takes a fraction of a second to seconds, far less than a "
            "real checkpoint's, so the gain on a GPU is larger."
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main(sys.argv[1:])
