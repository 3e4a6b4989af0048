"""`seedgrid generate`: one job from the command line, images and grid written to a folder."""

import argparse
import sys
from pathlib import Path

from seedgrid.client.api import JobTimeout, SeedgridClient
from seedgrid.client.cli.fetch import fetch_command
from seedgrid.client.cli.follow import run_to_folder
from seedgrid.client.cli.request_args import add_request_options, defaults_left_out, request_from_args
from seedgrid.client.local import LocalStack
from seedgrid.shared.job import JobState
from seedgrid.shared.names import PRIORITIES
from seedgrid.shared.request import JobRequest, RequestError
from seedgrid.shared.settings import get_settings
from seedgrid.shared.workers import worker_serving


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "generate",
        help="generate images for prompts x seeds",
        description="Generate images; with no Redis configured, a private Redis and a local "
        "worker are started for this run.",
    )
    add_request_options(p)
    p.add_argument("--out", type=Path, default=Path("seedgrid-out"), help="folder for the PNGs (default: %(default)s)")
    p.add_argument("--grid", action="store_true", help="also write OUT/grid.png")
    p.add_argument("--redis", default=get_settings().redis_url, help="Redis URL (default: $SEEDGRID_REDIS_URL)")
    p.add_argument("--device", choices=["cuda", "cpu"], help="device of the local worker, when one is started")
    p.add_argument("--queue-anyway", action="store_true", help="queue even if no online worker serves the model")
    p.add_argument(
        "--priority",
        choices=list(PRIORITIES),
        default="normal",
        help="high jumps ahead of normal and low jobs in the queue (default: normal)",
    )
    p.add_argument("--timeout", type=float, default=None, help="stop waiting after this many seconds (the job goes on)")
    p.add_argument(
        "--detach",
        action="store_true",
        help="queue the job, print its id and exit; `seedgrid fetch JOB_ID` writes its images later",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        request = request_from_args(args)
    except RequestError as exc:
        print(f"seedgrid generate: {exc}", file=sys.stderr)
        return 2
    if args.detach and not args.redis:
        print(
            "seedgrid generate: --detach needs a shared Redis (set SEEDGRID_REDIS_URL or pass --redis): "
            "a private one stops when this command exits",
            file=sys.stderr,
        )
        return 2
    with LocalStack(args.redis) as stack:
        client = stack.enter_context(SeedgridClient(stack.redis_url))
        if stack.embedded and not args.detach:
            stack.start_worker_online(client, request.model, args.device)
        try:
            request = with_served_defaults(client, request, args)
        except RequestError as exc:
            print(f"seedgrid generate: {exc}", file=sys.stderr)
            return 2
        if args.detach:
            return detach(client, request, args)
        return follow_and_save(
            client,
            request,
            args.out,
            "grid.png" if args.grid else None,
            queue_anyway=args.queue_anyway,
            timeout=args.timeout,
            priority=args.priority,
            shared=not stack.embedded,
        )


def with_served_defaults(client: SeedgridClient, request: JobRequest, args: argparse.Namespace) -> JobRequest:
    """The request with the defaults of a worker serving its model for the options left out (its family's)."""
    if not defaults_left_out(args):
        return request
    served = worker_serving(client.workers(), request.model)
    return request if served is None else request_from_args(args, served)


def detach(client: SeedgridClient, request: JobRequest, args: argparse.Namespace) -> int:
    try:
        job_id = client.submit(request, require_worker=not args.queue_anyway, priority=args.priority)
    except RequestError as exc:
        print(f"seedgrid generate: {exc}", file=sys.stderr)
        return 2
    print(job_id)
    print(
        f"queued; to write its images once it has finished: {fetch_command(job_id, args.out, args.grid)}",
        file=sys.stderr,
    )
    return 0


def follow_and_save(
    client: SeedgridClient,
    request: JobRequest,
    out: Path,
    grid_name: str | None,
    queue_anyway: bool = False,
    timeout: float | None = None,
    priority: str = "normal",
    shared: bool = True,
) -> int:
    """`shared`: the Redis outlives this command, so a job it stops waiting for can be fetched later."""
    try:
        status, saved = run_to_folder(
            client, request, out, "job", grid_name, require_worker=not queue_anyway, timeout=timeout, priority=priority
        )
    except RequestError as exc:
        print(f"seedgrid generate: {exc}", file=sys.stderr)
        return 2
    except JobTimeout as exc:
        later = (
            f"it goes on: {fetch_command(exc.job_id, out, grid_name is not None)} once it has finished"
            if shared
            else "the private Redis stops with this command, and the job with it"
        )
        print(f"seedgrid generate: {exc}; {later}", file=sys.stderr)
        return 1
    for path in saved.paths:
        print(path)
    if saved.grid_path:
        print(saved.grid_path)
    if status.state != JobState.SUCCEEDED:
        print(f"job {status.job_id} {status.state.value}: {status.error}", file=sys.stderr)
        return 1
    return 0
