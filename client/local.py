"""One machine on its own: a private Redis and a local worker process, stopped together."""

import importlib.util
import os
import signal
import subprocess
import sys
from contextlib import ExitStack

from seedgrid.shared.embedded_redis import EmbeddedRedis, join_hint
from seedgrid.shared.names import worker_command

WORKER_PACKAGES = ("torch", "diffusers", "transformers")


def missing_worker_packages() -> list[str]:
    return [name for name in WORKER_PACKAGES if importlib.util.find_spec(name) is None]


class LocalWorker:
    """A `seedgrid worker` child process; its output goes to `log_path` or is inherited."""

    def __init__(
        self,
        redis_url: str,
        model: str,
        device: str | None = None,
        log_path: str | None = None,
        extra_args: list[str] | None = None,
        env: dict | None = None,
    ):
        missing = missing_worker_packages()
        if missing:
            raise RuntimeError(f"a local worker needs {', '.join(missing)}: pip install 'seedgrid[worker]'")
        cmd = [*worker_command(sys.executable), "--model", model, "--loglevel", "warning"]
        if device:
            cmd += ["--device", device]
        cmd += extra_args or []
        self._log = open(log_path, "ab") if log_path else None
        self.process = subprocess.Popen(
            cmd,
            stdout=subprocess.DEVNULL if self._log is None else self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {}), "SEEDGRID_REDIS_URL": redis_url},
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        """Warm shutdown first (Celery finishes or hands back the job), then kill."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()


class LocalStack(ExitStack):
    """Resolve the Redis URL, starting a private Redis when none is configured."""

    def __init__(self, redis_url: str | None, announce: bool = True):
        super().__init__()
        self._redis_url = redis_url
        self.announce = announce
        self.embedded: EmbeddedRedis | None = None

    @property
    def redis_url(self) -> str:
        """The configured URL, or the private Redis's once the stack is entered."""
        if not self._redis_url:
            raise RuntimeError("the Redis URL is known once the LocalStack is entered")
        return self._redis_url

    def __enter__(self) -> "LocalStack":
        super().__enter__()
        if not self._redis_url:
            self.embedded = self.enter_context(EmbeddedRedis())
            self._redis_url = self.embedded.url
            if self.announce:
                print(
                    "No Redis configured: started a private one for this run.\n" + join_hint(self.redis_url),
                    file=sys.stderr,
                    flush=True,
                )
        return self

    def start_worker(self, model: str, device: str | None = None, log_path: str | None = None) -> LocalWorker:
        worker = LocalWorker(self.redis_url, model, device, log_path)
        self.callback(worker.stop)
        return worker
