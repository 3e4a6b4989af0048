"""Redis behind Sentinel: sentinel://:PASSWORD@HOST:PORT[,HOST:PORT...]/DB?master=NAME.

The password is the master's (and its replicas'); the sentinels are asked with the same one, or
with `&sentinel_password=...` when theirs differs. Every client follows a failover: it asks the
sentinels for the master again when its connection fails or the old master says READONLY.
"""

from dataclasses import dataclass
from typing import TypeGuard
from urllib.parse import parse_qs, quote, unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from seedgrid.shared.redis_conn import UnsafeRedisURL, is_loopback

SCHEME = "sentinel"
DEFAULT_PORT = 26379
FORM = "sentinel://:PASSWORD@HOST:26379[,HOST:26379...]/0?master=NAME"
OPTIONS = ("master", "sentinel_password")
# A sentinel answers at once or is skipped for the next one: short waits, no retries of its own.
SENTINEL_TIMEOUT = 2.0


@dataclass(frozen=True)
class SentinelURL:
    hosts: tuple[tuple[str, int], ...]
    master: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None  # None: the sentinels use `password`

    def credentials(self) -> dict:
        """username and password for the master and replicas."""
        return {k: v for k, v in (("username", self.username), ("password", self.password)) if v}

    def sentinel_credentials(self) -> dict:
        if self.sentinel_password:
            return {"password": self.sentinel_password}
        return self.credentials()

    def label(self) -> str:
        return f"Redis master {self.master!r} via sentinels {','.join(f'{h}:{p}' for h, p in self.hosts)}"


def is_sentinel_url(url: str | None) -> TypeGuard[str]:
    return bool(url) and urlsplit(url or "").scheme == SCHEME


def _problem(text: str) -> UnsafeRedisURL:
    return UnsafeRedisURL(f"Sentinel URL: {text} (expected {FORM})")


def _host_port(item: str) -> tuple[str, int]:
    if item.startswith("["):  # [IPv6]:PORT
        host, _, rest = item[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        host, _, port = item.partition(":")
    if not host:
        raise _problem(f"an empty host in {item!r}")
    if not port:
        return host, DEFAULT_PORT
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise _problem(f"port {port!r} of {host} is not a number from 1 to 65535")
    return host, int(port)


def parse_sentinel_url(url: str) -> SentinelURL:
    """The parts of a sentinel:// URL; raises UnsafeRedisURL with one line naming what is wrong."""
    parts = urlsplit(url)
    if parts.scheme != SCHEME:
        raise _problem(f"scheme {parts.scheme!r} is not {SCHEME!r}")
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    hosts = tuple(_host_port(item.strip()) for item in hostlist.split(",") if item.strip())
    if not hosts:
        raise _problem("no sentinel hosts")
    db = parts.path.strip("/") or "0"
    if not db.isdigit():
        raise _problem(f"database {db!r} is not a number")
    query = parse_qs(parts.query, keep_blank_values=True)
    if unknown := sorted(set(query) - set(OPTIONS)):
        raise _problem(f"unknown option {unknown[0]!r} (known: {', '.join(OPTIONS)})")
    master = query.get("master", [""])[-1]
    if not master:
        raise _problem("no master name: add ?master=NAME, the name the sentinels monitor")
    sentinel_password = query.get("sentinel_password", [None])[-1]
    if sentinel_password == "":
        raise _problem("sentinel_password is empty")
    credentials = unquote(username) or None, unquote(password) or None
    parsed = SentinelURL(hosts, master, int(db), *credentials, sentinel_password)
    exposed = [h for h, _ in hosts if not is_loopback(h)]
    if exposed and not parsed.password:
        raise _problem(f"{exposed[0]} has no password; a shared Redis must have one")
    return parsed


def sentinel_options() -> dict:
    return {
        "socket_timeout": SENTINEL_TIMEOUT,
        "socket_connect_timeout": SENTINEL_TIMEOUT,
        "socket_keepalive": True,
        "retry": Retry(NoBackoff(), 0),
    }


def master_client(url: str, options: dict) -> redis.Redis:
    """A client of the current master: each new connection asks the sentinels where it is.

    redis-py's SentinelManagedConnection turns a READONLY reply (a demoted master, celery#7946)
    into a ConnectionError after disconnecting, so the retry in `options` reconnects to the new master.
    """
    parsed = parse_sentinel_url(url)
    sentinel = Sentinel(list(parsed.hosts), sentinel_kwargs={**sentinel_options(), **parsed.sentinel_credentials()})
    return sentinel.master_for(parsed.master, db=parsed.db, **parsed.credentials(), **options)


def celery_url(url: str) -> str:
    """kombu's and Celery's form: one sentinel://[:PASSWORD@]HOST:PORT/DB per sentinel, joined by ';'."""
    parsed = parse_sentinel_url(url)
    userinfo = ""
    if parsed.password:
        userinfo = f"{quote(parsed.username or '', safe='')}:{quote(parsed.password, safe='')}@"
    elif parsed.username:
        userinfo = f"{quote(parsed.username, safe='')}@"
    return ";".join(f"{SCHEME}://{userinfo}{f'[{h}]' if ':' in h else h}:{p}/{parsed.db}" for h, p in parsed.hosts)


def celery_transport_options(url: str) -> dict:
    """master_name and sentinel_kwargs, for broker_ and result_backend_transport_options.

    No retry_on_timeout: with it, redis-py answers a pub/sub read that fails on the dead master by
    reconnecting, to the new master once one is promoted, and reading again with no timeout; the
    worker's event loop then waits there for ever and takes no task (one way to celery#6348).
    Without it the error reaches kombu, which rebuilds every connection through the sentinels.
    """
    parsed = parse_sentinel_url(url)
    return {
        "master_name": parsed.master,
        "sentinel_kwargs": {**sentinel_options(), **parsed.sentinel_credentials()},
        "retry_on_timeout": False,
    }
