"""Riding out a Redis outage inside a job: results wait for Redis to return, progress is skipped.

Every call is bounded (redis_conn.CALL_BOUND_SECONDS); after a best-effort call (progress, previews,
cancel checks) fails, the next ones are skipped for SKIP_SECONDS, so an outage costs the GPU loop one
bounded wait per SKIP_SECONDS, not one per step.
"""

import logging
import time

import redis
from kombu.exceptions import OperationalError

log = logging.getLogger(__name__)

# OperationalError: Celery's wrapping of the same errors when a task is sent (a turn requeued).
OUTAGE_ERRORS = (redis.ConnectionError, redis.TimeoutError, OperationalError)
RESULT_RETRY_SECONDS = 300.0
SKIP_SECONDS = 10.0

_skip_until = 0.0


def until_redis_returns(fn, *args, seconds: float | None = None, **kwargs):
    """Call `fn` until Redis answers (results must not be lost to a short outage); after `seconds`
    (default RESULT_RETRY_SECONDS) the outage error is raised, and the delivery is not acknowledged."""
    deadline = time.monotonic() + (RESULT_RETRY_SECONDS if seconds is None else seconds)
    while True:
        try:
            return fn(*args, **kwargs)
        except OUTAGE_ERRORS as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("Redis unreachable (%s); retrying %s", exc, getattr(fn, "__name__", "a call"))
            time.sleep(0.5)


def if_redis_answers(fn, *args, default=None, **kwargs):
    """Call `fn`, or give `default` while Redis is away (progress and cancel checks are best effort)."""
    global _skip_until
    if time.monotonic() < _skip_until:
        return default
    try:
        return fn(*args, **kwargs)
    except OUTAGE_ERRORS as exc:
        _skip_until = time.monotonic() + SKIP_SECONDS
        log.warning("Redis unreachable (%s); progress skipped for %.0f s", exc, SKIP_SECONDS)
        return default
