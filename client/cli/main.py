"""`seedgrid`: one command with a subcommand for each role."""

import argparse
import sys

from seedgrid.client.cli import admin, demo, generate, gui
from seedgrid.shared.redis_conn import url_problem


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seedgrid",
        description="Stable Diffusion for a group: GPU workers behind a Redis queue, clients that submit "
        "prompts x seeds and get grids back. With no Redis configured ($SEEDGRID_REDIS_URL or "
        "--redis), a private Redis is started for the run.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo.add_parser(sub)
    generate.add_parser(sub)
    worker = sub.add_parser(
        "worker", help="serve one model from a Redis queue (needs seedgrid[worker])", add_help=False
    )
    worker.set_defaults(run=None)
    gui.add_parsers(sub)
    admin.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["worker"]:
        return run_worker(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 0 if args.command is None else 2
    if getattr(args, "needs_redis", False) and not args.redis:
        parser.error(f"{args.command}: no Redis configured: set SEEDGRID_REDIS_URL or pass --redis")
    redis_url = getattr(args, "redis", None)
    if redis_url and (problem := url_problem(redis_url)):
        print(f"seedgrid {args.command}: {problem}", file=sys.stderr)
        return 2
    return args.run(args)


def run_worker(argv: list[str]) -> int:
    """The worker lives in its own package with its own dependencies; load it only when asked."""
    from seedgrid.client.local import missing_worker_packages

    missing = missing_worker_packages()
    if missing:
        print(f"seedgrid worker: {', '.join(missing)} missing: pip install 'seedgrid[worker]'", file=sys.stderr)
        return 2
    from seedgrid.worker.cli import main as worker_main

    return worker_main(argv)


if __name__ == "__main__":
    sys.exit(main())
