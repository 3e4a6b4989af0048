"""What a deployment watches: `seedgrid health` (the compose health check) and task events (Flower)."""

import signal
import subprocess
import sys
import threading
import uuid

import pytest

from seedgrid.shared import names
from seedgrid.shared.celery_config import make_celery
from seedgrid.shared.embedded_redis import _free_port
from seedgrid.shared.job import JobState
from seedgrid.shared.names import TASK_GENERATE
from seedgrid.shared.redis_conn import connect
from seedgrid.shared.request import JobRequest
from seedgrid.shared.workers import HEARTBEAT_TTL
from tests.helpers import wait_until

# Every test here starts worker, Redis or CLI processes.
pytestmark = pytest.mark.processes


def health(redis_url: str, name: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "seedgrid.client.cli.main", "health", "--worker", name, "--redis", redis_url],
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_unhealthy_in_one_line(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith("seedgrid health: ") and result.stderr.count("\n") == 1, result.stderr
    assert all(word in result.stderr for word in words), result.stderr


def test_health_passes_for_a_live_worker(redis_url, tiny_worker):
    result = health(redis_url, tiny_worker.name)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{tiny_worker.name}: online") and "tiny" in result.stdout


def test_health_fails_for_a_name_no_worker_has(redis_url, tiny_worker):
    assert_unhealthy_in_one_line(health(redis_url, "no-such-worker"), "'no-such-worker'", "not online")


def test_health_fails_once_a_killed_worker_stops_beating(redis_url, session_workers):
    # The simulated model beats as a real one does and is online in about a second (no torch to load).
    worker = session_workers.start(name=f"doomed-{uuid.uuid4().hex[:6]}", model="simulated")
    assert health(redis_url, worker.name).returncode == 0
    worker.process.send_signal(signal.SIGKILL)  # no goodbye: its heartbeat just stops
    worker.process.wait(timeout=10)
    with connect(redis_url) as redis:  # the key `health` reads, watched without a process a second
        wait_until(
            lambda: not redis.exists(names.worker_key(worker.name)),
            timeout=HEARTBEAT_TTL + 15,
            interval=0.1,
            message="the dead worker's heartbeat to expire",
        )
    assert_unhealthy_in_one_line(health(redis_url, worker.name), worker.name, "not online")


def test_health_fails_in_one_line_when_redis_does_not_answer():
    result = health(f"redis://:pw@127.0.0.1:{_free_port()}/0", "any")
    assert_unhealthy_in_one_line(result, "Redis did not answer")
    assert "pw@" not in result.stderr


def test_flower_sees_a_job_sent_received_and_succeeded(redis_url, tiny_worker, client):
    """Flower shows only what clients and workers send as task events."""
    app = make_celery(redis_url)
    events: list[dict] = []
    ready = threading.Event()
    with app.connection_for_read() as connection:
        receiver = app.events.Receiver(connection, handlers={"*": events.append})
        original_ready = receiver.on_consume_ready

        def on_consume_ready(*args, **kwargs):
            original_ready(*args, **kwargs)
            ready.set()

        receiver.on_consume_ready = on_consume_ready
        listener = threading.Thread(target=receiver.capture, kwargs={"limit": None, "timeout": None}, daemon=True)
        listener.start()
        try:
            assert ready.wait(30), "the event receiver did not start"
            job_id = client.submit(JobRequest(prompts=["a lighthouse"], seeds=[7], steps=2, width=64, height=64))
            assert client.wait(job_id, timeout=120).state == JobState.SUCCEEDED

            def job_events() -> dict[str, dict]:
                return {e["type"]: e for e in list(events) if e.get("uuid") == job_id}  # the task id is the job id

            seen = wait_until(
                lambda: "task-succeeded" in job_events() and job_events(), timeout=30, message="the job's task events"
            )
            assert {"task-sent", "task-received", "task-started", "task-succeeded"} <= set(seen)
            assert seen["task-sent"]["name"] == TASK_GENERATE
        finally:
            receiver.should_stop = True
            listener.join(timeout=10)
        app.close()
