"""`seedgrid workers`, `jobs`, `cancel` and `redis`: look at and steer a running system."""

import argparse
import os
import signal
import sys
import time

from seedgrid.client.api import SeedgridClient
from seedgrid.shared.embedded_redis import EmbeddedRedis, join_hint


def add_parsers(subparsers) -> None:
    redis_help = "Redis URL (default: $SEEDGRID_REDIS_URL)"
    url = os.environ.get("SEEDGRID_REDIS_URL")
    p = subparsers.add_parser("workers", help="list online workers and the models they serve")
    p.add_argument("--redis", default=url, help=redis_help)
    p.set_defaults(run=list_workers, needs_redis=True)
    p = subparsers.add_parser("jobs", help="list this client's jobs, newest first")
    p.add_argument("--redis", default=url, help=redis_help)
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(run=list_jobs, needs_redis=True)
    p = subparsers.add_parser("cancel", help="cancel a queued or running job")
    p.add_argument("job_id")
    p.add_argument("--redis", default=url, help=redis_help)
    p.set_defaults(run=cancel, needs_redis=True)
    p = subparsers.add_parser("redis", help="run a private Redis in the foreground for other terminals to join")
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--data-dir", default=None, help="keep data here, with append-only persistence")
    p.set_defaults(run=serve_redis)


def list_workers(args: argparse.Namespace) -> int:
    with SeedgridClient(args.redis) as client:
        workers = client.workers()
    if not workers:
        print("no online workers")
    for w in workers:
        state = f"busy ({w.current_job[:8]})" if w.busy else "idle"
        device = f"{w.device_name} {w.device_memory_gb:.1f} GB"
        print(f"{w.name:28} {w.host:16} {device:28} {w.model:40} batch<={w.max_batch} {state:16} done {w.jobs_done}")
    return 0


def list_jobs(args: argparse.Namespace) -> int:
    with SeedgridClient(args.redis) as client:
        for s in client.jobs(args.limit):
            prompt = s.request.prompts[0][:40] if s.request else ""
            print(
                f"{s.job_id}  {s.state.value:9} {s.progress:4.0%}  {s.images_done}/{s.images_total}  "
                f"{s.worker or '-':24} {prompt}"
            )
    return 0


def cancel(args: argparse.Namespace) -> int:
    with SeedgridClient(args.redis) as client:
        try:
            status = client.cancel(args.job_id)
        except KeyError as exc:
            print(f"seedgrid cancel: {exc.args[0]}", file=sys.stderr)
            return 1
    print(f"{status.job_id}: {status.state.value}" + ("" if status.state.finished else " (cancel requested)"))
    return 0


def serve_redis(args: argparse.Namespace) -> int:
    with EmbeddedRedis(port=args.port, data_dir=args.data_dir, appendonly=bool(args.data_dir)) as server:
        print(join_hint(server.url), flush=True)
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
        try:
            while not stop:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    return 0
