"""Problems a user can fix, each as one line for stderr: what failed and what to do about it.

`main()` turns these exceptions into that line and an exit status; anything not here is a bug and
keeps its traceback. `seedgrid --debug COMMAND` shows the traceback of these too.
"""

import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import redis
from kombu.exceptions import OperationalError

from seedgrid.client.api import JobTimeout, NoWorkerOnline, WorkerExited
from seedgrid.shared.embedded_redis import RedisUnavailable
from seedgrid.shared.redis_sentinel import is_sentinel_url, parse_sentinel_url

# What torch says when CUDA cannot be used at all (no CUDA build, no driver, no GPU).
CUDA_UNAVAILABLE = (
    "Torch not compiled with CUDA enabled",
    "Found no NVIDIA driver",
    "No CUDA GPUs are available",
    "CUDA driver version is insufficient",
)


@dataclass(frozen=True)
class Problem:
    message: str
    exit_code: int = 1


class JobInterrupted(Exception):
    """Ctrl+C while following a job, after the job was cancelled."""

    def __init__(self, job_id: str):
        super().__init__(f"interrupted: cancelled job {job_id}")
        self.job_id = job_id


def server_name(url: str | None) -> str:
    if not url:
        return "the private Redis"
    if is_sentinel_url(url):
        try:
            return parse_sentinel_url(url).label()
        except ValueError:
            return "the Redis behind Sentinel"
    parts = urlsplit(url)
    return f"Redis at {parts.hostname}:{parts.port or 6379}"


def describe(exc: BaseException, url: str | None, setting: str = "SEEDGRID_REDIS_URL") -> Problem | None:
    """The one line for `exc`, or None when it is not a problem of the user's setup.

    `url` is the Redis URL the command used (None: a private Redis); `setting` is where it came from.
    """
    server = server_name(url)
    if isinstance(exc, RuntimeError) and "Celery result store" in str(exc):  # its reconnects ran out
        exc = next((e for e in causes(exc) if isinstance(e, redis.RedisError)), exc)
    if isinstance(exc, redis.AuthenticationError):
        if "must be called with the client already authenticated" in str(exc) or "NOAUTH" in str(exc):
            return Problem(f"{server} wants a password (give it in {setting}: redis://:PASSWORD@HOST:PORT/0)")
        return Problem(f"{server} refused the password (check {setting})")
    if isinstance(exc, redis.exceptions.NoPermissionError):
        return Problem(f"{server} refused a command to this user: {exc} (check the ACL user in {setting})")
    if isinstance(exc, (redis.RedisError, OperationalError)) and (tls := tls_failure(exc)):
        return Problem(
            f"TLS with {server} failed: {tls} (is it a TLS port? is the CA that signed its certificate "
            "in SEEDGRID_REDIS_CA?)"
        )
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
        return Problem(f"cannot reach {server}: {os_reason(exc)} (is Redis running there? check {setting})")
    if isinstance(exc, redis.exceptions.InvalidResponse):
        return Problem(f"{server} does not answer like a Redis server ({exc}); check the port in {setting}")
    if isinstance(exc, OperationalError):
        return Problem(f"cannot send the job to {server}: {exc} (check {setting})")
    if isinstance(exc, JobInterrupted):
        return Problem(str(exc), 130)
    if isinstance(exc, WorkerExited):
        if exc.reason:
            return Problem(f"{exc}: {exc.reason}")
        return Problem(f"{exc}: `seedgrid worker` with the same --model and --device says why")
    if isinstance(exc, (JobTimeout, NoWorkerOnline)):
        return Problem(str(exc))
    if isinstance(exc, RedisUnavailable):
        return Problem(str(exc).splitlines()[0], 2)
    if isinstance(exc, (AssertionError, RuntimeError)) and any(s in str(exc) for s in CUDA_UNAVAILABLE):
        return Problem(f"CUDA cannot be used here: {exc}; use --device cpu or install a CUDA build of torch", 2)
    return None


def causes(exc: BaseException | None):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def tls_failure(exc: BaseException) -> str | None:
    """The TLS reason when `exc` came from a TLS handshake or certificate check."""
    for e in causes(exc):
        if isinstance(e, ssl.SSLCertVerificationError) and e.verify_message:
            return f"its certificate was refused: {e.verify_message}"
        if isinstance(e, ssl.SSLError):
            return getattr(e, "reason", None) or str(e)
        if isinstance(e, OSError) and "handshake" in str(e):
            return "the handshake timed out" if "timed out" in str(e) else str(e)
    return None


def os_reason(exc: BaseException) -> str:
    """'Connection refused' rather than redis-py's 'Error 111 connecting to HOST:PORT. Connection refused.'"""
    for e in causes(exc):
        if isinstance(e, OSError) and e.strerror:
            return e.strerror
    return str(exc).rstrip(".") or type(exc).__name__
