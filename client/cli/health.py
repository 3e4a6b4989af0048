"""`seedgrid health --worker NAME`: exit 0 while that worker's heartbeat is in Redis (a container health check)."""

import argparse
import sys

import redis
from pydantic import ValidationError
from redis.backoff import NoBackoff
from redis.retry import Retry

from seedgrid.shared import names
from seedgrid.shared.redis_conn import connect
from seedgrid.shared.settings import get_settings
from seedgrid.shared.workers import HEARTBEAT_TTL, WorkerInfo

TIMEOUT_S = 5.0  # well inside a health check's timeout: one answer or one failure, no retries


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "health",
        help="exit 0 if a worker is online (its heartbeat is in Redis), else 1: a container health check",
        description=f"Exit 0 if the worker named NAME sent a heartbeat within the last {HEARTBEAT_TTL} s, "
        "else print why on one line and exit 1.",
    )
    p.add_argument("--worker", required=True, metavar="NAME", help="the worker's --name")
    p.add_argument("--redis", default=get_settings().redis_url, help="Redis URL (default: $SEEDGRID_REDIS_URL)")
    p.set_defaults(run=run, needs_redis=True)


def run(args: argparse.Namespace) -> int:
    try:
        with connect(
            args.redis, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S, retry=Retry(NoBackoff(), 0)
        ) as client:
            heartbeat = client.get(names.worker_key(args.worker))
    except redis.RedisError as exc:
        print(f"seedgrid health: Redis did not answer: {exc}", file=sys.stderr)
        return 1
    if heartbeat is None:
        print(
            f"seedgrid health: worker {args.worker!r} is not online: no heartbeat in the last {HEARTBEAT_TTL} s",
            file=sys.stderr,
        )
        return 1
    try:
        info = WorkerInfo.model_validate_json(heartbeat)
    except ValidationError:
        print(f"seedgrid health: worker {args.worker!r} sent a heartbeat this version cannot read", file=sys.stderr)
        return 1
    state = f"{info.state()} with job {info.current_job}" if info.busy else "idle"
    models = info.models_label()
    print(f"{info.name}: online, {state}, serving {models} on {info.device}, {info.jobs_done} jobs done")
    return 0
