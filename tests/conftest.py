"""Real parts for the tests: a Redis server the tests start, and seedgrid worker processes (tiny model)."""

import atexit
import os
import shutil
import tempfile
import threading
import uuid

import pytest

from seedgrid.client.api import SeedgridClient
from seedgrid.client.local import LocalWorker
from seedgrid.shared.embedded_redis import EmbeddedRedis
from seedgrid.shared.settings import get_settings

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# The app's settings and history go to a folder of this test process, never the user's (`seedgrid up` and
# `seedgrid app` started by the tests inherit it).
_HOME = tempfile.mkdtemp(prefix="seedgrid-tests-")
atexit.register(shutil.rmtree, _HOME, True)
for _name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
    os.environ[_name] = os.path.join(_HOME, _name.lower())
# One torch thread per process: the tests run a client and one or two workers side by side on
# few cores, where torch's default (a thread per core in every process) makes them thrash.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# Short enough that a job of a killed worker is handed to another within seconds in the tests.
TEST_VISIBILITY_TIMEOUT = "8"


# Fixtures that start seedgrid worker processes; a test using one is marked `processes`.
WORKER_FIXTURES = {"tiny_worker", "session_workers", "workers", "stack", "supervised", "window"}


def pytest_collection_modifyitems(items):
    for item in items:
        if WORKER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.processes)


@pytest.fixture(autouse=True)
def fresh_settings():
    """Settings are read once per process; a test that sets SEEDGRID_* variables reads them anew."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def tiny_engine():
    """The tiny pipeline in this process, on the CPU, for tests of the engine itself."""
    from seedgrid.worker.engine import PipelineEngine
    from seedgrid.worker.models.loading import load_pipeline

    return PipelineEngine(load_pipeline("tiny", "cpu"), "tiny", "cpu")


@pytest.fixture(scope="session")
def redis_server():
    with EmbeddedRedis() as server:
        yield server


@pytest.fixture(scope="session")
def redis_url(redis_server) -> str:
    return redis_server.url


@pytest.fixture(scope="module")
def server():
    """A Redis of the test module's own: what one module's tests leave in it (or do to it) reaches no other."""
    with EmbeddedRedis() as s:
        yield s


class WorkerFactory:
    """Start tiny-model worker processes on a Redis and stop them all at the end."""

    def __init__(
        self, redis_url: str, log_dir, visibility_timeout: str = TEST_VISIBILITY_TIMEOUT, env: dict | None = None
    ):
        self.redis_url = redis_url
        self.visibility_timeout = visibility_timeout
        self.env = env or {}
        self.log_dir = log_dir
        self.workers: list[LocalWorker] = []

    def start(
        self, name: str | None = None, extra_args: list[str] | None = None, wait: bool = True, model: str = "tiny"
    ) -> LocalWorker:
        name = name or f"w{len(self.workers)}-{uuid.uuid4().hex[:6]}"
        log_path = str(self.log_dir / f"{name}.log")
        worker = LocalWorker(
            self.redis_url,
            model,
            "cpu",
            log_path=log_path,
            extra_args=["--name", name, *(extra_args or [])],
            env={"SEEDGRID_VISIBILITY_TIMEOUT": self.visibility_timeout, **self.env},
        )
        worker.name, worker.log_path = name, log_path
        self.workers.append(worker)
        if wait:
            self.wait_online(worker)
        return worker

    def wait_online(self, worker: LocalWorker, timeout: float = 120.0) -> None:
        with SeedgridClient(self.redis_url) as client:
            import time

            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if any(w.name == worker.name for w in client.workers()):
                    return
                assert worker.alive(), f"worker {worker.name} exited:\n{open(worker.log_path).read()[-3000:]}"
                time.sleep(0.2)
        raise TimeoutError(f"worker {worker.name} did not come online")

    def stop_all(self) -> None:
        """Each worker as before (a warm shutdown, then a kill), all at once: teardown waits for the slowest."""
        threads = [threading.Thread(target=worker.stop) for worker in self.workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


@pytest.fixture(scope="session")
def session_workers(redis_url, tmp_path_factory):
    factory = WorkerFactory(redis_url, tmp_path_factory.mktemp("worker-logs"))
    yield factory
    factory.stop_all()


SHARED_TINY = "shared-tiny"


@pytest.fixture(scope="session", autouse=True)
def start_the_shared_tiny_worker_first(request):
    """When a selected test uses `tiny_worker`, it starts booting (6-10 s of imports) with the session's first
    test, alongside the tests before the first that uses it, instead of in that test's setup."""
    if any("tiny_worker" in item.fixturenames for item in request.session.items):
        request.getfixturevalue("session_workers").start(name=SHARED_TINY, wait=False)


@pytest.fixture(scope="session")
def tiny_worker(session_workers) -> LocalWorker:
    """One tiny worker shared by the tests that only need the system to work."""
    started = [w for w in session_workers.workers if w.name == SHARED_TINY]
    worker = started[0] if started else session_workers.start(name=SHARED_TINY, wait=False)
    session_workers.wait_online(worker)
    return worker


@pytest.fixture
def client(redis_url):
    """A client with its own id, so each test sees only its own jobs."""
    with SeedgridClient(redis_url, client_id=f"test-{uuid.uuid4().hex[:8]}") as c:
        yield c
