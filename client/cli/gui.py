"""`seedgrid gui` (the app on a configured Redis) and `seedgrid up` (Redis, a local worker and the app)."""

import argparse
import importlib.util
import sys

from seedgrid.client.local import LocalStack
from seedgrid.shared.settings import get_settings


def add_parsers(subparsers) -> None:
    url = get_settings().redis_url
    p = subparsers.add_parser("gui", help="open the desktop app (needs seedgrid[client])")
    p.add_argument(
        "--redis", default=url, help="Redis URL (default: $SEEDGRID_REDIS_URL, else the last one the app connected to)"
    )
    p.set_defaults(run=gui)
    p = subparsers.add_parser(
        "up",
        help="one machine: a private Redis, a local worker (started again if it dies) and the app, "
        "stopped together (also by Ctrl+C)",
    )
    p.add_argument("--model", default="tiny", help="model of the local worker (default: tiny, built in)")
    p.add_argument("--device", choices=["cuda", "cpu"], help="device of the local worker")
    p.add_argument("--redis", default=url, help="use this Redis instead of a private one")
    p.set_defaults(run=up)


def _qt_missing() -> bool:
    if importlib.util.find_spec("PySide6") is None:
        print("seedgrid: the desktop app needs PySide6: pip install 'seedgrid[client]'", file=sys.stderr)
        return True
    return False


def gui(args: argparse.Namespace) -> int:
    if _qt_missing():
        return 2
    from seedgrid.client.gui.app import run_app
    from seedgrid.client.gui.settings import last_redis_url

    url = args.redis or last_redis_url()
    if not url:
        print(
            "seedgrid gui: no Redis configured: pass --redis URL, set SEEDGRID_REDIS_URL, "
            "or run `seedgrid up` for a private Redis and a local worker",
            file=sys.stderr,
        )
        return 2
    return run_app(url, remember=True)


def up(args: argparse.Namespace) -> int:
    if _qt_missing():
        return 2
    from seedgrid.client.gui.app import run_app
    from seedgrid.client.local import LocalWorker
    from seedgrid.client.worker_keeper import WorkerKeeper

    with LocalStack(args.redis) as stack:
        keeper = WorkerKeeper(lambda: LocalWorker(stack.redis_url, args.model, args.device))
        stack.callback(keeper.stop)
        keeper.start()
        return run_app(stack.redis_url, model=args.model)
