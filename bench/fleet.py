"""The fleet with a SIMULATED model (fixed seconds per image): it measures the queue and the fleet, not a GPU.

    python -m bench.fleet [--workers 1,2,4,8] [--seconds 0.2] [--jobs-per-worker 12] [--json PATH]

Prints jobs per second at each fleet size and the ratio to perfect scaling (n workers x 1/seconds),
then the wait of one client's single image while another client's 64-image job runs, with the
job split in turns (the default) and without (--turn-images 0), measured side by side.
"""

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from seedgrid.client.api import SeedgridClient
from seedgrid.client.local import LocalWorker
from seedgrid.shared.embedded_redis import EmbeddedRedis
from seedgrid.shared.job import JobState
from seedgrid.shared.request import JobRequest

SIM = "simulated"


def start_fleet(url: str, count: int, seconds: float, log_dir: str, extra: list[str] = ()) -> list[LocalWorker]:
    fleet = [
        LocalWorker(
            url,
            SIM,
            log_path=f"{log_dir}/w{i}.log",
            extra_args=["--simulated-seconds", str(seconds), "--name", f"sim-{i}-{uuid.uuid4().hex[:4]}", *extra],
        )
        for i in range(count)
    ]
    with SeedgridClient(url) as client:
        deadline = time.monotonic() + 120
        while len([w for w in client.workers() if w.model == SIM]) < count:
            if time.monotonic() > deadline or not all(w.alive() for w in fleet):
                raise RuntimeError(f"the simulated fleet of {count} did not come online; logs in {log_dir}")
            time.sleep(0.1)
    return fleet


def stop_fleet(fleet: list[LocalWorker]) -> None:
    for worker in fleet:
        worker.process.terminate()
    for worker in fleet:
        worker.stop()


def throughput(workers: int, seconds: float, jobs: int, log_dir: str) -> dict:
    with EmbeddedRedis() as redis_server:
        fleet = start_fleet(redis_server.url, workers, seconds, log_dir)
        try:
            with SeedgridClient(redis_server.url) as client:
                request = JobRequest(model=SIM, prompts=["fleet"], seeds=[0], steps=4, width=64, height=64)
                started = time.perf_counter()
                ids = [client.submit(request) for _ in range(jobs)]
                states = [client.wait(j, poll_seconds=0.01).state for j in ids]
                elapsed = time.perf_counter() - started
        finally:
            stop_fleet(fleet)
    rate = jobs / elapsed
    return {
        "workers": workers,
        "jobs": jobs,
        "seconds": elapsed,
        "jobs_per_second": rate,
        "perfect_jobs_per_second": workers / seconds,
        "scaling": rate / (workers / seconds),
        "succeeded": sum(s == JobState.SUCCEEDED for s in states),
    }


def single_image_wait(seconds: float, turn_images: int | None, log_dir: str) -> dict:
    extra = [] if turn_images is None else ["--turn-images", str(turn_images)]
    with EmbeddedRedis() as redis_server:
        fleet = start_fleet(redis_server.url, 1, seconds, log_dir, extra)
        try:
            with (
                SeedgridClient(redis_server.url, client_id="big") as big,
                SeedgridClient(redis_server.url, client_id="small") as small,
            ):
                large = big.submit(
                    JobRequest(model=SIM, prompts=["large"], seeds=list(range(64)), steps=4, width=64, height=64)
                )
                while big.status(large).state != JobState.RUNNING:
                    time.sleep(0.005)
                submitted = time.perf_counter()
                single = small.submit(
                    JobRequest(model=SIM, prompts=["single"], seeds=[1], steps=4, width=64, height=64)
                )
                small.wait(single, poll_seconds=0.005)
                wait = time.perf_counter() - submitted
                large_total = big.wait(large, poll_seconds=0.01)
        finally:
            stop_fleet(fleet)
    return {
        "turn_images": "one batch" if turn_images is None else turn_images,
        "single_image_wait_s": wait,
        "large_job_s": large_total.finished_at - large_total.started_at,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", default="1,2,4,8")
    parser.add_argument("--seconds", type=float, default=0.2, help="simulated seconds per image")
    parser.add_argument("--jobs-per-worker", type=int, default=12)
    parser.add_argument("--fair-seconds", type=float, default=0.05, help="seconds per image in the fairness run")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    print(
        "SIMULATION: a stand-in model that takes a fixed time per image; this measures the queue and the "
        "fleet, not a GPU."
    )
    results = {"simulated_seconds_per_image": args.seconds, "scaling": [], "fairness": []}
    with tempfile.TemporaryDirectory() as log_dir:
        print(f"\n{'workers':>7} {'jobs':>5} {'seconds':>8} {'jobs/s':>7} {'perfect':>8} {'scaling':>8}")
        for n in (int(x) for x in args.workers.split(",")):
            row = throughput(n, args.seconds, n * args.jobs_per_worker, log_dir)
            results["scaling"].append(row)
            print(
                f"{n:>7} {row['jobs']:>5} {row['seconds']:>8.2f} {row['jobs_per_second']:>7.2f} "
                f"{row['perfect_jobs_per_second']:>8.2f} {row['scaling']:>8.1%}"
            )
        print(f"\nOne image from client B while client A's 64-image job runs ({args.fair_seconds} s per image):")
        for turn in (None, 0):
            row = single_image_wait(args.fair_seconds, turn, log_dir)
            results["fairness"].append(row)
            print(
                f"  turns of {str(row['turn_images']):>9}: the single image waited {row['single_image_wait_s']:.2f} s "
                f"(the large job took {row['large_job_s']:.2f} s)"
            )
        with_turns, without = results["fairness"]
        print(f"  wait with turns / without: {with_turns['single_image_wait_s'] / without['single_image_wait_s']:.1%}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main(sys.argv[1:])
