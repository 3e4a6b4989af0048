"""`seedgrid demo`: the guide's workflow through the queue: a batch of seeds, then refine one."""

import argparse
import sys
import time
from pathlib import Path

from seedgrid.client.api import SeedgridClient
from seedgrid.client.cli.follow import run_to_folder
from seedgrid.client.local import LocalStack
from seedgrid.shared.job import JobState
from seedgrid.shared.request import JobRequest
from seedgrid.shared.settings import get_settings

GUIDE_PROMPT = "portrait photo of a old warrior chief"
GUIDE_STYLE = (
    ", tribal panther make up, blue on red, side profile, looking away, serious eyes"
    " 50mm portrait photography, hard rim lighting photography--beta --ar 2:3  --beta --upbeta"
)
GUIDE_SUBJECTS = ["the oldest warrior chief", "a old warrior chief", "a warrior chief", "a young warrior chief"]


def demo_requests(model: str) -> list[tuple[str, JobRequest, str]]:
    """(label, request, grid file): seeds 0-7 at 20 steps, then the four prompt variants at seed 1, 25 steps."""
    batch = JobRequest(model=model, prompts=[GUIDE_PROMPT], seeds=list(range(8)), steps=20)
    refine = JobRequest(
        model=model, prompts=[f"portrait photo of {s}{GUIDE_STYLE}" for s in GUIDE_SUBJECTS], seeds=[1], steps=25
    )
    return [("batch", batch, "grid.png"), ("refine", refine, "refine.png")]


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("demo", help="run the guide's workflow (batch of seeds, then refine) through the queue")
    p.add_argument("--out", type=Path, default=Path("seedgrid-demo"), help="output folder (default: %(default)s)")
    p.add_argument("--model", default="tiny", help="model for the local worker (default: tiny, built in)")
    p.add_argument(
        "--redis",
        default=get_settings().redis_url,
        help="use this Redis and its workers instead of a private Redis and a local worker",
    )
    p.add_argument("--device", choices=["cuda", "cpu"], help="device of the local worker")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    with LocalStack(args.redis) as stack:
        client = stack.enter_context(SeedgridClient(stack.redis_url))
        if stack.embedded:
            started = time.perf_counter()
            stack.start_worker_online(client, args.model, args.device)
            print(f"worker for {args.model} online after {time.perf_counter() - started:.1f} s")
        failures = 0
        for label, request, grid_name in demo_requests(args.model):
            failures += run_one(client, label, request, args.out, grid_name)
    return 1 if failures else 0


def run_one(client: SeedgridClient, label: str, request: JobRequest, out: Path, grid_name: str) -> int:
    status, saved = run_to_folder(client, request, out, f"{label:6}", grid_name, prefix=label)
    queued = status.started_at - status.submitted_at
    generating = status.finished_at - status.started_at - status.load_seconds
    loading = f"loading the model {status.load_seconds:.2f} s, " if status.load_seconds else ""
    print(
        f"{label}: {status.state.value}, {len(saved.paths)} images, queued {queued:.2f} s, {loading}"
        f"generating {generating:.2f} s, fetching {saved.fetch_seconds:.2f} s -> {saved.grid_path}"
    )
    if status.state != JobState.SUCCEEDED:
        print(f"{label}: {status.error}", file=sys.stderr)
        return 1
    return 0
