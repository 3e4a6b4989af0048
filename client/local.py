"""One machine on its own: a private Redis and a local worker process, stopped together."""

import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from typing import TYPE_CHECKING

from seedgrid.shared.embedded_redis import EmbeddedRedis, join_hint
from seedgrid.shared.names import worker_command

if TYPE_CHECKING:
    from seedgrid.client.api import SeedgridClient

WORKER_PACKAGES = ("torch", "diffusers", "transformers")


def missing_worker_packages() -> list[str]:
    return [name for name in WORKER_PACKAGES if importlib.util.find_spec(name) is None]


class LocalWorker:
    """A `seedgrid worker` child process; its output goes to `log_path`, else to a private file kept
    for its last words (why it exited)."""

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
        cmd = [*worker_command(sys.executable), *(["--model", model] if model else []), "--loglevel", "warning"]
        if device:
            cmd += ["--device", device]
        cmd += extra_args or []
        self._log = open(log_path, "ab") if log_path else tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            cmd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {}), "SEEDGRID_REDIS_URL": redis_url},
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def last_words(self) -> str:
        """The worker's own one-line refusal (`seedgrid worker: ...`), else its last line of output."""
        if self._log.closed:
            return ""
        self._log.flush()
        with open(self._log.fileno(), "rb", closefd=False) as out:
            out.seek(max(0, os.fstat(out.fileno()).st_size - 8192))
            lines = [line.strip() for line in out.read().decode(errors="replace").splitlines() if line.strip()]
        own = [line.removeprefix("seedgrid worker: ") for line in lines if line.startswith("seedgrid worker: ")]
        return (own or lines or [""])[-1][:300]

    def stop(self, timeout: float = 20.0) -> None:
        """Warm shutdown first (Celery finishes or hands back the job), then kill."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
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

    def start_worker_online(self, client: "SeedgridClient", model: str, device: str | None = None) -> LocalWorker:
        """A local worker, once it serves `model`; WorkerExited says why when it stops before."""
        from seedgrid.client.api import WorkerExited

        worker = self.start_worker(model, device)
        try:
            client.wait_for_worker(model, alive=worker.alive)
        except WorkerExited as exc:
            raise WorkerExited(str(exc), worker.last_words()) from None
        return worker
