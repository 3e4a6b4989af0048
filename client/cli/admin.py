"""`seedgrid workers`, `models`, `jobs`, `cancel` and `redis`: look at and steer a running system."""

import argparse
import signal
import sys
import time

from seedgrid.client.api import SeedgridClient
from seedgrid.shared.embedded_redis import EmbeddedRedis, RedisUnavailable, join_hint, password_problem
from seedgrid.shared.settings import get_settings
from seedgrid.shared.workers import serving


def add_parsers(subparsers) -> None:
    redis_help = "Redis URL (default: $SEEDGRID_REDIS_URL)"
    url = get_settings().redis_url
    p = subparsers.add_parser("workers", help="list online workers and the models they serve")
    p.add_argument("--redis", default=url, help=redis_help)
    p.set_defaults(run=list_workers, needs_redis=True)
    p = subparsers.add_parser("models", help="list the models online workers serve, loaded ones first")
    p.add_argument("--redis", default=url, help=redis_help)
    p.set_defaults(run=list_models, needs_redis=True)
    p = subparsers.add_parser("jobs", help="list this client's jobs, newest first")
    p.add_argument("--redis", default=url, help=redis_help)
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(run=list_jobs, needs_redis=True)
    p = subparsers.add_parser("cancel", help="cancel a queued or running job, or every job of a plot")
    p.add_argument("job_id", help="a job id, or a plot id (seedgrid plot prints it)")
    p.add_argument("--redis", default=url, help=redis_help)
    p.set_defaults(run=cancel, needs_redis=True)
    p = subparsers.add_parser("redis", help="run a private Redis in the foreground for other terminals to join")
    p.add_argument(
        "--port", type=int, default=None, help="1 to 65535 (default: the last run's with --data-dir, else free)"
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="keep data here, with append-only persistence, and the password (mode 0600) and port, "
        "so that a restart serves the same URL",
    )
    p.add_argument(
        "--password", default=None, help="the password to require (default: the one kept in --data-dir, else random)"
    )
    p.set_defaults(run=serve_redis)


def list_workers(args: argparse.Namespace) -> int:
    with SeedgridClient(args.redis) as client:
        workers = client.workers()
    if not workers:
        print("no online workers")
        return 0
    print(f"{'NAME':28} {'HOST':16} {'DEVICE':28} {'MODEL':40} {'BATCH':8} {'STATE':16} JOBS DONE")
    for w in workers:
        state = f"{w.state()} ({w.current_job[:8]})" if w.busy else "idle"
        device = f"{w.device_name} {w.device_memory_gb:.1f} GB"
        batch = f"batch<={w.max_batch}"
        print(f"{w.name:28} {w.host:16} {device:28} {w.models_label():40} {batch:8} {state:16} done {w.jobs_done}")
        if w.memory_plan:
            print(f"{'':28} memory: {w.memory_plan}")
        if w.loras:
            print(f"{'':28} LoRAs: {', '.join(w.loras)}")
    print("* loaded now (a worker of several models loads the others when a job needs them)")
    return 0


def list_models(args: argparse.Namespace) -> int:
    with SeedgridClient(args.redis) as client:
        workers = client.workers()
    offered = serving(workers)
    if not offered:
        print("no online workers")
        return 0
    print(f"{'MODEL':40} {'FAMILY':7} {'LOADED ON':24} {'SERVED BY':10} DEFAULTS")
    for name, offer in offered.items():
        loaded_on = ", ".join(w.name for w in workers if w.has_loaded(name)) or "-"
        served_by = sum(1 for w in workers if w.serves(name))
        defaults = f"{offer.default_width}x{offer.default_height}, {offer.default_steps} steps"
        print(f"{name:40} {offer.family:7} {loaded_on:24} {served_by:<10} {defaults}")
    loras = sorted({lora for w in workers for lora in w.loras})
    print(f"LoRAs: {', '.join(loras) if loras else 'none (a worker allows them with --loras DIR)'}")
    return 0


def list_jobs(args: argparse.Namespace) -> int:
    with SeedgridClient(args.redis) as client:
        jobs = client.jobs(args.limit)
    if not jobs:
        print("no jobs")
        return 0
    width = max(9, *(len(s.activity) for s in jobs))  # "loading model NAME" while a worker loads its model
    print(f"{'JOB':32}  {'STATE':{width}} {'DONE':4}  {'IMAGES':7}  {'WORKER':24} PROMPT")
    for s in jobs:
        prompt = s.request.prompts[0][:40] if s.request else ""
        prompt += f"  (plot {s.plot_id[:8]})" if s.plot_id else ""
        images = f"{s.images_done}/{s.images_total}"
        print(f"{s.job_id}  {s.activity:{width}} {s.progress:4.0%}  {images:7}  {s.worker or '-':24} {prompt}")
    return 0


def cancel(args: argparse.Namespace) -> int:
    with SeedgridClient(args.redis) as client:
        try:
            statuses = [client.cancel(args.job_id)]
        except KeyError as exc:
            statuses = client.cancel_plot_id(args.job_id)
            if not statuses:
                print(f"seedgrid cancel: {exc.args[0]} (nor a plot of that id)", file=sys.stderr)
                return 1
    for status in statuses:
        print(f"{status.job_id}: {status.state.value}" + ("" if status.state.finished else " (cancel requested)"))
    return 0


def serve_redis(args: argparse.Namespace) -> int:
    if args.port is not None and not 0 < args.port < 65536:
        print(f"seedgrid redis: --port must be from 1 to 65535, not {args.port}", file=sys.stderr)
        return 2
    if args.password is not None and (problem := password_problem(args.password)):
        print(f"seedgrid redis: --password {problem}", file=sys.stderr)
        return 2
    try:
        server = EmbeddedRedis(
            port=args.port, password=args.password, data_dir=args.data_dir, appendonly=bool(args.data_dir)
        ).start()
    except (OSError, RedisUnavailable) as exc:
        where = f" with --data-dir {args.data_dir}" if args.data_dir else ""
        print(f"seedgrid redis: could not start{where}: {str(exc).strip()}", file=sys.stderr)
        return 1
    with server:
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))  # before the URL is out: a stop may follow it
        print(join_hint(server.url), flush=True)
        try:
            while not stop:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    return 0
