"""`seedgrid fetch`: write a finished job's images (and grid) to a folder, as `generate` would have."""

import argparse
import shlex
import sys
from pathlib import Path

from seedgrid.client.api import SeedgridClient
from seedgrid.client.save import save_job
from seedgrid.shared.job import JobState, JobStatus
from seedgrid.shared.settings import get_settings


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("fetch", help="write a finished job's images (e.g. of `generate --detach`) to a folder")
    p.add_argument("job_id")
    p.add_argument("--out", type=Path, default=Path("seedgrid-out"), help="folder for the PNGs (default: %(default)s)")
    p.add_argument("--grid", action="store_true", help="also write OUT/grid.png")
    p.add_argument("--redis", default=get_settings().redis_url, help="Redis URL (default: $SEEDGRID_REDIS_URL)")
    p.set_defaults(run=run, needs_redis=True)


def fetch_command(job_id: str, out: Path, grid: bool) -> str:
    """The command line that fetches the job later."""
    return f"seedgrid fetch {job_id} --out {shlex.quote(str(out))}" + (" --grid" if grid else "")


def run(args: argparse.Namespace) -> int:
    with SeedgridClient(args.redis) as client:
        try:
            status = client.status(args.job_id)
        except KeyError as exc:
            print(f"seedgrid fetch: {exc.args[0]}", file=sys.stderr)
            return 1
        if not status.state.finished:
            print(
                f"seedgrid fetch: job {status.job_id} is {describe_unfinished(status)}; try again once it has finished",
                file=sys.stderr,
            )
            return 1
        saved = save_job(client, status, args.out, status.job_id[:8], "grid.png" if args.grid else None)
    for path in saved.paths:
        print(path)
    if saved.grid_path:
        print(saved.grid_path)
    if status.state != JobState.SUCCEEDED:
        error = f": {status.error}" if status.error else ""
        print(f"seedgrid fetch: job {status.job_id} {status.state.value}{error}", file=sys.stderr)
        return 1
    return 0


def describe_unfinished(status: JobStatus) -> str:
    if status.state == JobState.RUNNING:
        return f"running (step {status.step}/{status.steps}, images {status.images_done}/{status.images_total})"
    return status.activity
