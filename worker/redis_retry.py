"""Riding out a Redis outage inside a job: results wait for Redis to return, progress is skipped."""

import logging
import time

import redis

log = logging.getLogger(__name__)

OUTAGE_ERRORS = (redis.ConnectionError, redis.TimeoutError)
RESULT_RETRY_SECONDS = 300.0


def until_redis_returns(fn, *args, seconds: float = RESULT_RETRY_SECONDS, **kwargs):
    """Call `fn` until Redis answers (results must not be lost to a short outage)."""
    deadline = time.monotonic() + seconds
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
    try:
        return fn(*args, **kwargs)
    except OUTAGE_ERRORS:
        return default
