"""kill -9 of the busy worker, SIMULATED model: seconds from the kill to the job's next image.

    python -m bench.faults [--kills 10] [--workers 3] [--images 6] [--seconds 0.5]
                           [--visibility-timeout 20] [--lease-seconds N] [--json PATH]

Two fleets side by side, each on its own Redis, taking turns kill by kill: leases on (takeover by
a live worker, the default) and takeover off (SEEDGRID_LEASE_TAKEOVER=0: only Celery's visibility
timeout brings the job back), with the same short visibility timeout in both. Each kill: a job of
--images images (batches of one, one turn), kill -9 of the worker its record names right after its
first image is stored, the seconds to its next stored image, a new worker in the dead one's place,
then a check that the job finished with every image stored once.
"""

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

from bench.fleet import SIM, stop_fleet
from seedgrid.client.api import SeedgridClient
from seedgrid.client.local import LocalWorker
from seedgrid.shared.embedded_redis import EmbeddedRedis
from seedgrid.shared.job import JobState
from seedgrid.shared.request import JobRequest

MODES = {"leases on": {}, "takeover off": {"SEEDGRID_LEASE_TAKEOVER": "0"}}


class Fleet:
    """Simulated workers on one Redis, restarted one for one when killed."""

    def __init__(self, mode: str, url: str, args: argparse.Namespace, log_dir: str):
        self.mode, self.url, self.args, self.log_dir = mode, url, args, log_dir
        self.env = {**MODES[mode], "SEEDGRID_VISIBILITY_TIMEOUT": str(args.visibility_timeout)}
        if args.lease_seconds:
            self.env["SEEDGRID_LEASE_SECONDS"] = str(args.lease_seconds)
        self.workers: dict[str, LocalWorker] = {}
        self.client = SeedgridClient(url, client_id=f"faults-{uuid.uuid4().hex[:6]}")
        self.kills: list[dict] = []

    def start(self, count: int) -> None:
        names = []
        for _ in range(count):
            name = f"{self.mode.split()[0]}-{uuid.uuid4().hex[:6]}"
            extra = ["--simulated-seconds", str(self.args.seconds), "--max-batch", "1", "--turn-images", "0"]
            self.workers[name] = LocalWorker(
                self.url, SIM, log_path=f"{self.log_dir}/{name}.log", extra_args=[*extra, "--name", name], env=self.env
            )
            names.append(name)
        wait_for(lambda: set(names) <= {w.name for w in self.client.workers()}, 120, f"workers {names} online")

    def stop(self) -> None:
        stop_fleet(list(self.workers.values()))
        self.client.close()

    def kill_once(self) -> dict:
        images = self.args.images
        request = JobRequest(model=SIM, prompts=["fault"], seeds=list(range(images)), steps=4, width=64, height=64)
        job_id = self.client.submit(request)

        def first_image():
            s = self.client.status(job_id)
            return s if s.images_done >= 1 and s.state == JobState.RUNNING and s.worker else None

        status = wait_for(first_image, 120, "the job's first image", interval=0.005)
        victim = self.workers.pop(status.worker)
        victim.process.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        victim.stop()  # already dead: reaps it and closes its log
        before = {r.index: r for r in self.client.images(job_id)}
        limit = 3 * self.args.visibility_timeout + 60
        wait_for(lambda: self.client.status(job_id).images_done > len(before), limit, "the next image", 0.005)
        seconds = time.monotonic() - killed_at
        self.start(1)  # the fleet keeps its size
        final = self.client.wait(job_id, timeout=limit, poll_seconds=0.05)
        after = self.client.images(job_id)
        by_index = {r.index: r for r in after}
        twice = len(after) - len(by_index) + sum(by_index.get(i) != r for i, r in before.items())
        row = {
            "seconds": seconds,
            "images_at_kill": len(before),
            "finished": final.state == JobState.SUCCEEDED and sorted(by_index) == list(range(images)),
            "stored_twice": twice,
            "lost_worker": final.lost_worker,
        }
        self.kills.append(row)
        return row

    def summary(self) -> dict:
        seconds = [k["seconds"] for k in self.kills]
        return {
            "mode": self.mode,
            "kills": len(seconds),
            "median_s": statistics.median(seconds),
            "worst_s": max(seconds),
            "mean_s": statistics.fmean(seconds),
            "stored_twice": sum(k["stored_twice"] for k in self.kills),
            "jobs_finished": sum(k["finished"] for k in self.kills),
            "taken_over": sum(bool(k["lost_worker"]) for k in self.kills),
            "per_kill_s": [round(s, 2) for s in seconds],
        }


def wait_for(condition, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=10, help="kills per mode (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=3, help="workers per fleet (default: %(default)s)")
    parser.add_argument("--images", type=int, default=6, help="images per job (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=0.5, help="simulated seconds per image (default: %(default)s)")
    parser.add_argument(
        "--visibility-timeout", type=int, default=20, help="SEEDGRID_VISIBILITY_TIMEOUT of both fleets (default: 20)"
    )
    parser.add_argument("--lease-seconds", type=int, help="SEEDGRID_LEASE_SECONDS (default: the default, 10)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.images < 2 or args.kills < 1 or args.workers < 2:
        parser.error("needs --images 2 or more, --kills 1 or more and --workers 2 or more")
    lease = f"{args.lease_seconds} s" if args.lease_seconds else "default (10 s)"
    print(
        f"SIMULATION: {args.workers} workers per fleet, jobs of {args.images} images at {args.seconds} s each "
        f"(batches of one, one turn); visibility timeout {args.visibility_timeout} s in both modes; lease {lease}"
    )
    with tempfile.TemporaryDirectory() as log_dir, ExitStack() as stack:
        fleets = []
        for mode in MODES:
            server = stack.enter_context(EmbeddedRedis())
            fleet = Fleet(mode, server.url, args, log_dir)
            stack.callback(fleet.stop)
            fleet.start(args.workers)
            fleets.append(fleet)
        for i in range(args.kills):
            for fleet in fleets if i % 2 == 0 else fleets[::-1]:  # the order alternates
                row = fleet.kill_once()
                print(f"  kill {i + 1:>2} {fleet.mode:<12} next image after {row['seconds']:6.2f} s", flush=True)
        results = {"settings": vars(args) | {"json": None}, "modes": [f.summary() for f in fleets]}
    print("\n| mode | kills | median s | worst s | mean s | images stored twice | jobs finished | taken over |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for m in results["modes"]:
        print(
            f"| {m['mode']} | {m['kills']} | {m['median_s']:.1f} | {m['worst_s']:.1f} | {m['mean_s']:.1f} "
            f"| {m['stored_twice']} | {m['jobs_finished']}/{m['kills']} | {m['taken_over']} |"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main(sys.argv[1:])
