"""The Celery app both sides build: JSON only, late acks, one job at a time per worker."""

import os

from celery import Celery
from seedgrid.shared.names import PRIORITIES
from seedgrid.shared.redis_conn import celery_tls_options

DEFAULT_VISIBILITY_TIMEOUT = 2 * 3600  # seconds; longer than the longest job, or it runs twice
DEFAULT_RESULT_TTL = 24 * 3600


def env_seconds(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip().isdigit() else default


def visibility_timeout() -> int:
    """How long an unacknowledged job waits before another worker may take it again."""
    return env_seconds("SEEDGRID_VISIBILITY_TIMEOUT", DEFAULT_VISIBILITY_TIMEOUT)


def result_ttl() -> int:
    """How long job records, images and results stay in Redis."""
    return env_seconds("SEEDGRID_RESULT_TTL", DEFAULT_RESULT_TTL)


def make_celery(redis_url: str | None = None) -> Celery:
    app = Celery("seedgrid")
    configure_celery(app, redis_url)
    return app


def configure_celery(app: Celery, redis_url: str | None) -> None:
    vt = visibility_timeout()
    transport = {
        "visibility_timeout": vt,
        # Sweep for jobs of dead workers often enough that a short test timeout is honoured.
        "unacked_restore_interval": max(1, min(10, vt // 4)),
        "unacked_restore_throttle": 1,
        "priority_steps": [0, 3, 6, 9],
        "queue_order_strategy": "priority",
    }
    tls = celery_tls_options(redis_url)
    app.conf.update(
        broker_use_ssl=tls,
        redis_backend_use_ssl=tls,
        broker_url=redis_url,
        result_backend=redis_url,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_concurrency=1,
        broker_transport_options=transport,
        result_backend_transport_options=transport,
        result_expires=result_ttl(),
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        task_default_queue="seedgrid.default",
        task_default_priority=PRIORITIES["normal"],
    )
