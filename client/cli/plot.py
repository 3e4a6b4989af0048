"""`seedgrid plot`: an X/Y/Z plot of one prompt at one seed over up to three settings."""

import argparse
import sys
from pathlib import Path

from seedgrid.client.api import SeedgridClient
from seedgrid.client.cli.errors import JobInterrupted
from seedgrid.client.cli.generate import with_served_defaults
from seedgrid.client.cli.plot_progress import PlotProgressBar
from seedgrid.client.cli.request_args import add_request_options, request_from_args
from seedgrid.client.local import LocalStack
from seedgrid.client.plot_save import save_plot
from seedgrid.client.plots import PlotTimeout, SubmittedPlot, plot_state
from seedgrid.shared.job import JobState
from seedgrid.shared.names import PRIORITIES
from seedgrid.shared.plot import MAX_CELLS, Plot, make_plot
from seedgrid.shared.plot_axes import SETTINGS
from seedgrid.shared.request import RequestError
from seedgrid.shared.settings import get_settings

AXES_HELP = "; ".join(f"{name}: {values}" for name, values in SETTINGS.items())


class PlotInterrupted(JobInterrupted):
    """Ctrl+C while following a plot, after its jobs were cancelled."""

    def __init__(self, submitted: SubmittedPlot):
        Exception.__init__(self, f"interrupted: cancelled plot {submitted.plot_id} ({len(submitted.job_ids)} jobs)")
        self.job_id = submitted.plot_id


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "plot",
        help="an X/Y/Z plot: one prompt at one seed over up to three settings",
        description=f"Make one image per cell of up to three axes (at most {MAX_CELLS} cells) and write "
        "each cell's PNG, plot.png (plot-zN.png per Z value) and plot.json. Axes are SETTING=VALUES: "
        f"{AXES_HELP}. The other options set what the axes do not vary.",
    )
    add_request_options(p)
    for name in ("x", "y", "z"):
        p.add_argument(f"--{name}", metavar="SETTING=VALUES", help=f"the {name.upper()} axis, like steps=10-40:10")
    p.add_argument("--out", type=Path, default=Path("seedgrid-plot"), help="folder to write (default: %(default)s)")
    p.add_argument("--redis", default=get_settings().redis_url, help="Redis URL (default: $SEEDGRID_REDIS_URL)")
    p.add_argument("--device", choices=["cuda", "cpu"], help="device of the local worker, when one is started")
    p.add_argument("--queue-anyway", action="store_true", help="queue even if no online worker serves the model")
    p.add_argument("--priority", choices=list(PRIORITIES), default="normal", help="(default: normal)")
    p.add_argument("--timeout", type=float, default=None, help="stop waiting after this many seconds (the jobs go on)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        request = request_from_args(args)
        plot = make_plot(request, args.x, args.y, args.z, flag="--")  # refused before anything starts
    except RequestError as exc:
        print(f"seedgrid plot: {exc}", file=sys.stderr)
        return 2
    with LocalStack(args.redis) as stack:
        client = stack.enter_context(SeedgridClient(stack.redis_url))
        if stack.embedded:
            stack.start_worker_online(client, plot.base.model, args.device)
        try:  # what the axes do not vary and the options leave out: the served model's defaults, as generate
            plot = make_plot(with_served_defaults(client, request, args), args.x, args.y, args.z, flag="--")
        except RequestError as exc:
            print(f"seedgrid plot: {exc}", file=sys.stderr)
            return 2
        return follow_and_save(client, plot, args, shared=not stack.embedded)


def follow_and_save(client: SeedgridClient, plot: Plot, args: argparse.Namespace, shared: bool) -> int:
    try:
        submitted = client.submit_plot(plot, require_worker=not args.queue_anyway, priority=args.priority)
    except RequestError as exc:
        print(f"seedgrid plot: {exc}", file=sys.stderr)
        return 2
    print(f"plot {submitted.plot_id}: {len(plot.cells)} cells in {len(plot.jobs)} jobs", file=sys.stderr)
    bar = PlotProgressBar(f"plot {submitted.plot_id[:8]}")
    try:
        statuses = client.wait_plot(submitted, on_update=bar.update, timeout=args.timeout)
    except KeyboardInterrupt:
        client.cancel_plot(submitted)
        raise PlotInterrupted(submitted) from None
    except PlotTimeout as exc:
        return timed_out(client, submitted, exc, args.out, shared)
    finally:
        bar.close()
    saved = save_plot(client, submitted, statuses, args.out)
    for path in [*saved.plot_paths, saved.json_path]:
        print(path)
    state = plot_state(statuses)
    if state != JobState.SUCCEEDED:
        failed = [s for s in statuses.values() if s.state != JobState.SUCCEEDED]
        errors = "; ".join(sorted({s.error for s in failed if s.error}))[:300]
        print(f"plot {submitted.plot_id} {state.value}: {len(failed)} of {len(statuses)} jobs{': ' if errors else ''}"
              f"{errors}", file=sys.stderr)  # fmt: skip
        return 1
    return 0


def timed_out(client: SeedgridClient, submitted: SubmittedPlot, exc: PlotTimeout, out: Path, shared: bool) -> int:
    saved = save_plot(client, submitted, {}, out)
    later = (
        f"its jobs go on (ids in {saved.json_path}; `seedgrid cancel JOB_ID` stops one)"
        if shared
        else "the private Redis stops with this command, and the jobs with it"
    )
    print(f"seedgrid plot: {exc}; wrote the cells made so far; {later}", file=sys.stderr)
    return 1
