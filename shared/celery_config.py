"""The Celery app both sides build: JSON only, late acks, one job at a time per worker."""

from celery import Celery

from seedgrid.shared.names import DEFAULT_QUEUE, PRIORITIES
from seedgrid.shared.redis_conn import (
    CONNECT_TIMEOUT,
    HEALTH_CHECK_SECONDS,
    SOCKET_TIMEOUT,
    celery_tls_options,
    keepalive_options,
)
from seedgrid.shared.redis_sentinel import celery_transport_options, celery_url, is_sentinel_url
from seedgrid.shared.settings import get_settings


def visibility_timeout() -> int:
    """How long an unacknowledged job waits before another worker may take it again."""
    return get_settings().visibility_timeout


def result_ttl() -> int:
    """How long job records, images and results stay in Redis."""
    return get_settings().result_ttl


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
        # Bounded waits: a half-open connection raises instead of hanging a publish or an ack, and
        # kombu drops a BRPOP whose reply is overdue (within about 1 + 2 * 10 s).
        "socket_timeout": SOCKET_TIMEOUT,
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "socket_keepalive": True,
        "socket_keepalive_options": keepalive_options(),
        "health_check_interval": HEALTH_CHECK_SECONDS,
        "retry_on_timeout": True,
    }
    tls = celery_tls_options(redis_url)
    if is_sentinel_url(redis_url):  # kombu's and Celery's own form, the master's name in the options
        transport = {**transport, **celery_transport_options(redis_url)}
        redis_url = celery_url(redis_url)
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
        redis_socket_timeout=SOCKET_TIMEOUT,
        redis_socket_connect_timeout=CONNECT_TIMEOUT,
        redis_socket_keepalive=True,
        redis_retry_on_timeout=True,
        redis_backend_health_check_interval=HEALTH_CHECK_SECONDS,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        task_default_queue=DEFAULT_QUEUE,
        task_default_priority=PRIORITIES["normal"],
        # Task events, for Flower: sent (by clients), received, started, succeeded or failed (by workers).
        worker_send_task_events=True,
        task_send_sent_event=True,
    )
