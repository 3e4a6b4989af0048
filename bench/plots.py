"""A plot's cells folded into few jobs, against the same cells as one-image jobs, on two tiny workers on the CPU.

    python -m bench.plots [--cells-per-axis 4] [--size 64] [--json PATH]

An N x N plot (x: steps 2..N+1, y: seeds 0..N-1; the seeds of each steps value fold into one job, so N jobs
that the two workers share) goes through submit_plot and wait_plot; then its N*N cells are submitted as
separate one-image jobs (each cell's own request) and waited for. Both on one Redis and the same two
`seedgrid worker --model tiny --device cpu`, warmed up first, measured side by side in one run. It prints
cells, jobs, seconds and images per second of each, their ratio, and how many cells each worker made.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.fleet import stop_fleet
from seedgrid.client.api import SeedgridClient
from seedgrid.client.local import LocalWorker
from seedgrid.shared.embedded_redis import EmbeddedRedis
from seedgrid.shared.job import JobState, JobStatus
from seedgrid.shared.plot import Plot, make_plot
from seedgrid.shared.request import JobRequest

WORKERS = ("plots-w0", "plots-w1")


def start_workers(url: str, log_dir: str, model: str) -> dict[str, LocalWorker]:
    """Two workers of `model`: tiny on the CPU, or the SIMULATED model (no torch: 0.02 s an image)."""
    device, extra = ("cpu", []) if model == "tiny" else (None, ["--simulated-seconds", "0.02"])
    return {
        name: LocalWorker(url, model, device, log_path=f"{log_dir}/{name}.log", extra_args=["--name", name, *extra])
        for name in WORKERS
    }


def warm_up(client: SeedgridClient, workers: dict[str, LocalWorker], request: JobRequest, timeout: float = 180) -> None:
    """One-image jobs, one at a time, until each worker has made one: a heartbeat comes before Celery consumes."""
    deadline = time.monotonic() + timeout
    done: set[str] = set()
    while not set(workers) <= done:
        if time.monotonic() > deadline or not all(w.alive() for w in workers.values()):
            words = "; ".join(f"{name}: {w.last_words()}" for name, w in workers.items())
            raise RuntimeError(f"the workers did not all warm up (done: {sorted(done)}): {words}")
        if not any(w.name in workers for w in client.workers()):
            time.sleep(0.2)
            continue
        job_id = client.submit(request, require_worker=False)
        status = client.wait(job_id, poll_seconds=0.02, timeout=max(1.0, deadline - time.monotonic()))
        if status.state != JobState.SUCCEEDED:
            raise RuntimeError(f"a warm-up job {status.state.value}: {status.error}")
        done.update(r.worker for r in client.images(job_id))


def summary(client: SeedgridClient, label: str, seconds: float, cells: list[tuple[str, int]]) -> dict:
    """The run's figures; `cells`: (job id, item index) of each cell's image."""
    job_ids = list(dict.fromkeys(job_id for job_id, _ in cells))
    statuses: dict[str, JobStatus] = {job_id: client.status(job_id) for job_id in job_ids}
    makers = {job_id: {r.index: r.worker for r in client.images(job_id)} for job_id in job_ids}
    by_worker = Counter(makers[job_id].get(index, "none") for job_id, index in cells)
    return {
        "run": label,
        "cells": len(cells),
        "jobs": len(job_ids),
        "succeeded": sum(s.state == JobState.SUCCEEDED for s in statuses.values()),
        "merged": sum(bool(s.merged_into) for s in statuses.values()),
        "seconds": seconds,
        "images_per_second": len(cells) / seconds,
        "cells_by_worker": dict(sorted(by_worker.items())),
    }


def run_plot(client: SeedgridClient, plot: Plot) -> list[tuple[str, int]]:
    submitted = client.submit_plot(plot)
    client.wait_plot(submitted, timeout=600)
    return [submitted.cell_job(i) for i in range(len(plot.cells))]


def run_separate(client: SeedgridClient, plot: Plot) -> list[tuple[str, int]]:
    ids = [client.submit(cell.request) for cell in plot.cells]
    for job_id in ids:
        client.wait(job_id, poll_seconds=0.02, timeout=600)
    return [(job_id, 0) for job_id in ids]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells-per-axis", type=int, default=4, help="N: an N x N plot (at least 2)")
    parser.add_argument("--size", type=int, default=64, help="width and height of the images")
    parser.add_argument(
        "--model", choices=("tiny", "simulated"), default="tiny", help="simulated: a quick check, no torch"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    n = args.cells_per_axis
    if n < 2:
        parser.error("--cells-per-axis must be at least 2")
    base = JobRequest(model=args.model, prompts=["a lighthouse at dusk"], seeds=[0], width=args.size, height=args.size)
    x, y = f"steps=2-{n + 1}", f"seed=0-{n - 1}"
    plot = make_plot(base, x=x, y=y)
    results: dict = {"x": x, "y": y, "size": args.size, "workers": list(WORKERS), "runs": []}
    with tempfile.TemporaryDirectory() as log_dir, EmbeddedRedis() as redis_server:
        workers = start_workers(redis_server.url, log_dir, args.model)
        try:
            with SeedgridClient(redis_server.url) as client:
                warm_up(client, workers, plot.cells[0].request)
                for label, run in (("plot", run_plot), ("separate jobs", run_separate)):
                    started = time.perf_counter()
                    cells = run(client, plot)
                    seconds = time.perf_counter() - started
                    results["runs"].append(summary(client, label, seconds, cells))
        finally:
            stop_fleet(list(workers.values()))
    as_plot, separate = results["runs"]
    results["images_per_second_ratio"] = as_plot["images_per_second"] / separate["images_per_second"]
    where = " on the CPU" if args.model == "tiny" else ""
    print(
        f"Two {args.model} workers{where}, one Redis; a {n}x{n} plot (x {x}, y {y}) at {args.size}x{args.size}, "
        "against its cells as one-image jobs, submitted at once, after a warm-up job on each worker"
    )
    print(f"\n{'run':<14} {'cells':>5} {'jobs':>5} {'merged':>6} {'seconds':>8} {'images/s':>9}  cells by worker")
    for row in results["runs"]:
        makers = ", ".join(f"{name} {count}" for name, count in row["cells_by_worker"].items())
        print(
            f"{row['run']:<14} {row['cells']:>5} {row['jobs']:>5} {row['merged']:>6} {row['seconds']:>8.2f} "
            f"{row['images_per_second']:>9.2f}  {makers}"
        )
    print(f"\nplot / separate jobs: images/s {results['images_per_second_ratio']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main(sys.argv[1:])
