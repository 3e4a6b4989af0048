"""Connecting to Redis safely: a password unless on loopback, TLS with a CA file for rediss://."""

import ipaddress
import socket
import ssl
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from seedgrid.shared.settings import get_settings

SCHEMES = ("redis", "rediss", "sentinel")
CA_ENV = "SEEDGRID_REDIS_CA"


class UnsafeRedisURL(ValueError):
    pass


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_redis_url(url: str) -> None:
    """Refuse a URL that would expose the queue: any host but loopback needs a password (or ACL user)."""
    parts = urlsplit(url)
    if parts.scheme == "sentinel":
        from seedgrid.shared.redis_sentinel import parse_sentinel_url  # it imports this module

        parse_sentinel_url(url)
        return
    if parts.scheme not in SCHEMES:
        raise UnsafeRedisURL(f"Redis URL: scheme {parts.scheme!r} is not one of {', '.join(SCHEMES)}")
    if not parts.hostname:
        raise UnsafeRedisURL("Redis URL: no host (expected redis://:PASSWORD@HOST:6379/0)")
    if not unquote(parts.password or "") and not is_loopback(parts.hostname):
        raise UnsafeRedisURL(
            f"Redis URL: {parts.hostname} has no password; a shared Redis must have one "
            "(redis://:PASSWORD@HOST:6379/0, or redis://USER:PASSWORD@... for an ACL user)"
        )


def url_problem(url: str) -> str | None:
    """The reason `url` is refused, or None: for command lines that print it and exit."""
    try:
        check_redis_url(url)
    except UnsafeRedisURL as exc:
        return str(exc)
    return None


def tls_options(url: str) -> dict:
    """redis-py TLS options for rediss:// URLs: verify the server, against $SEEDGRID_REDIS_CA if set."""
    if urlsplit(url).scheme != "rediss":
        return {}
    options = {"ssl_cert_reqs": "required"}
    ca = get_settings().redis_ca
    if ca:
        options["ssl_ca_certs"] = ca
    return options


def celery_tls_options(url: str | None) -> dict | None:
    """The same, as Celery's broker_use_ssl / redis_backend_use_ssl want them."""
    options = tls_options(url or "")
    if not options:
        return None
    return {
        "ssl_cert_reqs": ssl.CERT_REQUIRED,
        **({"ssl_ca_certs": options["ssl_ca_certs"]} if "ssl_ca_certs" in options else {}),
    }


# Every connection seedgrid opens waits a bounded time to connect and for each reply, and retries once:
# one command returns or raises within CALL_BOUND_SECONDS, never hangs on a half-open connection.
CONNECT_TIMEOUT = 5.0
SOCKET_TIMEOUT = 5.0
RETRIES = 1
BACKOFF_CAP = 1.0
CALL_BOUND_SECONDS = (RETRIES + 1) * (CONNECT_TIMEOUT + SOCKET_TIMEOUT) + RETRIES * BACKOFF_CAP
HEALTH_CHECK_SECONDS = 10


def keepalive_options() -> dict[int, int]:
    """TCP keepalive probes after 10 s idle, every 5 s, 3 of them: a dead peer is noticed in about 25 s."""
    names = {"TCP_KEEPIDLE": 10, "TCP_KEEPINTVL": 5, "TCP_KEEPCNT": 3}
    return {getattr(socket, name): value for name, value in names.items() if hasattr(socket, name)}


def retry_policy() -> Retry:
    return Retry(ExponentialWithJitterBackoff(base=0.1, cap=BACKOFF_CAP), RETRIES)


def connection_options() -> dict:
    return {
        "socket_timeout": SOCKET_TIMEOUT,
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "socket_keepalive": True,
        "socket_keepalive_options": keepalive_options(),
        "health_check_interval": HEALTH_CHECK_SECONDS,
        "retry": retry_policy(),
        "retry_on_error": [redis.ConnectionError, redis.TimeoutError],
    }


def connect(url: str, **kwargs) -> redis.Redis:
    """A client for `url` with the bounded timeouts and retry policy above (`kwargs` override them)."""
    check_redis_url(url)
    if urlsplit(url).scheme == "sentinel":
        from seedgrid.shared.redis_sentinel import master_client

        return master_client(url, {**connection_options(), **kwargs})
    return redis.Redis.from_url(url, **tls_options(url), **{**connection_options(), **kwargs})


REFUSALS = ("WRONGPASS", "NOAUTH", "NOPERM")


def refusal(url: str) -> str | None:
    """Why Redis at `url` refuses this client (a wrong password, no permission), or None: it answered,
    or it could not be reached (something to wait for, not to give up on)."""
    try:
        with connect(
            url, socket_connect_timeout=3, socket_timeout=3, retry=Retry(ExponentialWithJitterBackoff(), 0)
        ) as r:
            r.ping()
    except redis.AuthenticationError as exc:
        return f"Redis refused the password ({exc})"
    except redis.ResponseError as exc:
        return f"Redis refused this client ({exc})" if str(exc).startswith(REFUSALS) else None
    except redis.RedisError:
        return None
    return None
