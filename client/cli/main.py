"""`seedgrid`: one command with a subcommand for each role."""

import argparse
import os
import sys
import traceback

from seedgrid.client.cli import admin, demo, errors, fetch, generate, gui, health, plot
from seedgrid.shared.redis_conn import url_problem
from seedgrid.shared.settings import SettingsError, get_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seedgrid",
        description="Stable Diffusion for a group: GPU workers behind a Redis queue, clients that submit "
        "prompts x seeds and get grids back. With no Redis configured ($SEEDGRID_REDIS_URL or "
        "--redis), a private Redis is started for the run.",
    )
    parser.add_argument("--debug", action="store_true", help="on an error, show its full traceback too")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo.add_parser(sub)
    generate.add_parser(sub)
    plot.add_parser(sub)
    fetch.add_parser(sub)
    worker = sub.add_parser(
        "worker", help="serve one model from a Redis queue (needs seedgrid[worker])", add_help=False
    )
    worker.set_defaults(run=None)
    gui.add_parsers(sub)
    admin.add_parsers(sub)
    health.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a command; a problem of the setup (Redis, TLS, device, timeout) ends it with one line on stderr."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = argv[:1] == ["--debug"]
    if debug:
        argv = argv[1:]
    name = f"seedgrid {argv[0]}" if argv and not argv[0].startswith("-") else "seedgrid"
    try:
        status = run_command(argv)
        sys.stdout.flush()  # a reader that went away shows here, not as a traceback at exit
        return status
    except BrokenPipeError:
        # `seedgrid jobs | head -1`: the reader has what it wanted (the recipe in Python's signal docs).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        url, setting = configured_redis(argv)
        problem = errors.describe(exc, url, setting)
        if problem is None:
            raise
        if debug:
            traceback.print_exc()
        print(f"{name}: {problem.message}", file=sys.stderr)
        return problem.exit_code


def configured_redis(argv: list[str]) -> tuple[str | None, str]:
    """The Redis URL a command was given, and where from, for error messages (None: a private Redis)."""
    for i, arg in enumerate(argv):
        if arg == "--redis" and i + 1 < len(argv):
            return argv[i + 1], "--redis"
        if arg.startswith("--redis="):
            return arg.partition("=")[2], "--redis"
    try:
        return get_settings().redis_url, "SEEDGRID_REDIS_URL"
    except SettingsError:
        return None, "SEEDGRID_REDIS_URL"


def run_command(argv: list[str]) -> int:
    try:
        get_settings()
    except SettingsError as exc:
        print(f"seedgrid: {exc}", file=sys.stderr)
        return 2
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
