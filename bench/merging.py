"""Dynamic batching: single-image jobs from several clients, with merging on and off, side by side.

    python -m bench.merging [--model tiny] [--device cpu] [--jobs 16] [--clients 4] [--json PATH]

Two workers load the same model, each on a private Redis of its own: one merges compatible
queued jobs into its batches (the default), one runs with --no-merge. Each round, the clients
submit their jobs at once (a thread each) to one stack and wait for all of them, then the same to
the other; the order alternates between rounds. It prints images per second for both, the ratio,
the number of GPU batches the merging worker ran, and the largest pixel difference between the
images of the two (the same seed must give the same image in any batch).
"""

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
from PIL import Image

from seedgrid.client.api import SeedgridClient
from seedgrid.client.local import LocalWorker
from seedgrid.shared.embedded_redis import EmbeddedRedis
from seedgrid.shared.job import JobState
from seedgrid.shared.request import JobRequest

MODES = ("merge", "alone")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.merging", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="tiny", help="any model a worker loads (default: %(default)s)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--jobs", type=int, default=16, help="single-image jobs per round, over all clients")
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--max-batch", type=int, default=8)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    if args.jobs < 1 or args.clients < 1 or args.rounds < 1:
        p.error("--jobs, --clients and --rounds must be at least 1")
    return args


class Stack:
    """A private Redis and one worker on it, merging or not."""

    def __init__(self, mode: str, args, log_dir: str):
        self.mode = mode
        self.redis = EmbeddedRedis().start()
        extra = ["--max-batch", str(args.max_batch), "--name", f"{mode}-{uuid.uuid4().hex[:4]}"]
        self.worker = LocalWorker(
            self.redis.url,
            args.model,
            args.device,
            log_path=f"{log_dir}/{mode}.log",
            extra_args=extra + (["--no-merge"] if mode == "alone" else []),
        )

    def wait_online(self) -> str:
        """The name under which the worker serves its model, once it is online."""
        with SeedgridClient(self.redis.url) as client:
            return client.wait_for_worker(None, timeout=600, alive=self.worker.alive).model

    def close(self) -> None:
        self.worker.stop()
        self.redis.stop()


def job_requests(args, model: str, round_: int) -> list[list[JobRequest]]:
    """Per client, its jobs: one image each, every one its own prompt and seed."""
    per_client: list[list[JobRequest]] = [[] for _ in range(args.clients)]
    for n in range(args.jobs):
        per_client[n % args.clients].append(
            JobRequest(
                model=model,
                prompts=[f"client {n % args.clients}: a lighthouse, study {n}"],
                seeds=[1000 * round_ + n],
                width=args.size,
                height=args.size,
                steps=args.steps,
            )
        )
    return per_client


def run_round(stack: Stack, per_client: list[list[JobRequest]]) -> dict:
    """Every client submits its jobs at the same moment and waits for them; images per second overall."""
    start = threading.Barrier(len(per_client) + 1)
    results: list[tuple[str, JobState, str, bytes]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def client_thread(requests: list[JobRequest]) -> None:
        try:
            with SeedgridClient(stack.redis.url, client_id=f"bench-{uuid.uuid4().hex[:6]}") as client:
                start.wait()
                ids = [client.submit(r) for r in requests]
                for job_id, request in zip(ids, requests, strict=True):
                    status = client.wait(job_id, poll_seconds=0.01, timeout=1800)
                    png = client.image_png(job_id, 0) if status.state == JobState.SUCCEEDED else b""
                    with lock:
                        results.append((request.prompts[0], status.state, status.merged_into, png))
        except BaseException as exc:  # reported below, the round fails
            errors.append(exc)
            start.abort()

    threads = [threading.Thread(target=client_thread, args=(r,)) for r in per_client]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - began
    if errors:
        raise errors[0]
    images = sum(state == JobState.SUCCEEDED for _, state, _, _ in results)
    return {
        "mode": stack.mode,
        "seconds": seconds,
        "images": images,
        "images_per_second": images / seconds,
        "batches": sum(not merged for _, _, merged, _ in results),
        "pngs": {prompt: png for prompt, _, _, png in results},
    }


def max_pixel_difference(a: dict[str, bytes], b: dict[str, bytes]) -> int:
    worst = 0
    for prompt in a.keys() & b.keys():
        x, y = (np.asarray(Image.open(io.BytesIO(p)).convert("RGB"), dtype=np.int16) for p in (a[prompt], b[prompt]))
        worst = max(worst, int(np.abs(x - y).max()))
    return worst


def main(argv=None) -> dict:
    args = parse_args(argv)
    print(
        f"{args.jobs} single-image jobs from {args.clients} clients, {args.model} on {args.device}, "
        f"{args.size}x{args.size}, {args.steps} steps, batches of up to {args.max_batch}"
    )
    rows: list[dict] = []
    differences = []
    with tempfile.TemporaryDirectory() as log_dir:
        stacks = {mode: Stack(mode, args, log_dir) for mode in MODES}
        try:
            model = [stack.wait_online() for stack in stacks.values()][0]
            print(f"\n{'round':>5} {'mode':>6} {'seconds':>8} {'images/s':>9} {'batches':>8}")
            for round_ in range(args.rounds):
                per_client = job_requests(args, model, round_)
                order = MODES if round_ % 2 == 0 else MODES[::-1]
                done = {mode: run_round(stacks[mode], per_client) for mode in order}
                differences.append(max_pixel_difference(done["merge"]["pngs"], done["alone"]["pngs"]))
                for mode in order:
                    row = {k: v for k, v in done[mode].items() if k != "pngs"} | {"round": round_ + 1}
                    rows.append(row)
                    print(
                        f"{row['round']:>5} {mode:>6} {row['seconds']:>8.2f} {row['images_per_second']:>9.2f} "
                        f"{row['batches']:>8}"
                    )
        finally:
            for stack in stacks.values():
                stack.close()
    rate = {mode: statistics.median(r["images_per_second"] for r in rows if r["mode"] == mode) for mode in MODES}
    report = {
        "settings": {k: v for k, v in vars(args).items() if k != "json"},
        "rounds": rows,
        "median_images_per_second": rate,
        "merge_over_alone": rate["merge"] / rate["alone"],
        "max_pixel_difference": max(differences),
        "all_succeeded": all(r["images"] == args.jobs for r in rows),
    }
    print(
        f"\nmedian images/s: merging {rate['merge']:.2f}, alone {rate['alone']:.2f}, "
        f"ratio {report['merge_over_alone']:.2f}x; largest pixel difference between the two: "
        f"{report['max_pixel_difference']}"
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main(sys.argv[1:])
