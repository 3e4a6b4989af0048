"""Breaking things on purpose: Redis restarts and outages, workers killed again and again."""

import signal
import time

import pytest

from seedgrid.client.api import SeedgridClient
from seedgrid.shared.embedded_redis import EmbeddedRedis
from seedgrid.shared.job import JobState
from seedgrid.shared.request import JobRequest
from tests.conftest import WorkerFactory
from tests.helpers import wait_until

# Every test here starts worker, Redis or CLI processes.
pytestmark = pytest.mark.processes

# The workers here serve the simulated model: the same runner, Redis records and Celery settings as a
# real model at a fixed time per image, and a worker boots in a second instead of ten.
SMALL = dict(model="simulated", seeds=[0, 1], steps=3, width=64, height=64)
FAST = {"model": "simulated", "extra_args": ["--simulated-seconds", "0.05"]}
# Every turn here is far shorter than this, so a job is only redelivered when its worker died.
FAULT_VISIBILITY_TIMEOUT = "4"
# Leases lapse after this (renewed every 0.9 s): a killed worker's job is taken over within seconds.
FAULT_LEASE_SECONDS = "3"
KILLS = 12


class PersistentRedis:
    """An append-only Redis that can be stopped and started again on the same port and data."""

    def __init__(self, data_dir):
        self.data_dir = str(data_dir)
        self.server = EmbeddedRedis(data_dir=self.data_dir, appendonly=True).start()
        self.url = self.server.url

    def stop(self) -> None:
        self.server.stop()

    def start(self) -> None:
        self.server = EmbeddedRedis(
            port=self.server.port, password=self.server.password, data_dir=self.data_dir, appendonly=True
        ).start()


@pytest.fixture
def persistent_redis(tmp_path):
    (tmp_path / "data").mkdir()
    server = PersistentRedis(tmp_path / "data")
    yield server
    server.stop()


@pytest.fixture
def workers(persistent_redis, tmp_path):
    factory = WorkerFactory(
        persistent_redis.url,
        tmp_path,
        visibility_timeout=FAULT_VISIBILITY_TIMEOUT,
        env={"SEEDGRID_LEASE_SECONDS": FAULT_LEASE_SECONDS},
    )
    yield factory
    factory.stop_all()


def test_jobs_queued_across_a_redis_restart_run_afterwards(persistent_redis, workers):
    with SeedgridClient(persistent_redis.url) as client:
        jobs = [client.submit(JobRequest(prompts=[f"queued {i}"], **SMALL), require_worker=False) for i in range(3)]
    persistent_redis.stop()
    persistent_redis.start()
    workers.start(name="after-restart", **FAST)
    with SeedgridClient(persistent_redis.url) as client:
        for job_id in jobs:
            status = client.wait(job_id, timeout=120)
            assert status.state == JobState.SUCCEEDED and status.images_done == 2


def test_a_ten_second_redis_outage_is_ridden_out_by_worker_and_client(persistent_redis, workers):
    worker = workers.start(name="outage", model="simulated", extra_args=["--simulated-seconds", "3"])
    with SeedgridClient(persistent_redis.url) as client:
        job_id = client.submit(JobRequest(prompts=["through the outage"], **{**SMALL, "steps": 150}))
        wait_until(lambda: client.status(job_id).state == JobState.RUNNING, timeout=60, message="the job to run")
        persistent_redis.stop()
        time.sleep(10)  # the outage itself
        persistent_redis.start()
        status = client.wait(job_id, timeout=120)  # the same client object, reconnecting by itself
        assert status.state == JobState.SUCCEEDED and [r.index for r in client.images(job_id)] == [0, 1]
        assert client.wait_for_worker("simulated", timeout=60).name == worker.name  # its heartbeat is back
        # One image, not two: at 3 s an image this worker needs only to show it still takes jobs.
        after = client.submit(JobRequest(prompts=["after the outage"], **{**SMALL, "seeds": [0]}))
        assert client.wait(after, timeout=120).state == JobState.SUCCEEDED
    assert worker.alive(), "the worker reconnected instead of dying"


def test_a_job_that_kills_its_worker_every_time_fails_after_three_deliveries(persistent_redis, workers):
    # Simulated workers (the same runner and Celery settings, no torch) boot in a second: four boots.
    slow = {"model": "simulated", "extra_args": ["--simulated-seconds", "120"]}
    with SeedgridClient(persistent_redis.url) as client:
        job_id = client.submit(
            JobRequest(model="simulated", prompts=["poison"], seeds=[0], steps=150, width=64, height=64),
            require_worker=False,
        )
        kills = 0
        for round_ in range(4):
            worker = workers.start(name=f"victim-{round_}", **slow)

            def finished_or_running_on_it(name=worker.name):
                s = client.status(job_id)
                return s if s.state.finished or (s.state == JobState.RUNNING and s.worker == name) else None

            status = wait_until(finished_or_running_on_it, timeout=120, message="the job to start again")
            if status.state.finished:
                break
            worker.process.send_signal(signal.SIGKILL)  # the job "crashes its worker"
            worker.process.wait(10)
            kills += 1
        final = client.wait(job_id, timeout=120)
        assert kills == 3 and final.state == JobState.FAILED
        assert final.error == "the job stopped its worker 3 times and is not tried again"
        assert final.attempts == 4 and client.images(job_id) == []


def test_a_cancelled_queued_job_never_runs_even_when_workers_restart_between(persistent_redis, workers):
    with SeedgridClient(persistent_redis.url) as client:
        job_id = client.submit(JobRequest(prompts=["never"], **SMALL), require_worker=False)
        assert client.cancel(job_id).state == JobState.CANCELLED
        first = workers.start(name="restart-a", **FAST)
        first.stop()
        workers.start(name="restart-b", **FAST)
        probe = client.submit(JobRequest(prompts=["probe"], **SMALL))
        assert client.wait(probe, timeout=120).state == JobState.SUCCEEDED
        final = client.status(job_id)
        assert final.state == JobState.CANCELLED and final.attempts == 0 and client.images(job_id) == []


def test_twelve_kill_9s_with_two_workers_lose_no_job_and_store_nothing_twice(persistent_redis, workers, capsys):
    """A spare worker boots while two serve; once it is online, a busy worker is killed mid-job.

    The workers serve the simulated model (the same runner, Redis records and Celery settings as a
    real model, at a fixed time per image) so that a dozen restarts take seconds, not minutes.
    """
    simulated = {"model": "simulated", "extra_args": ["--simulated-seconds", "0.25"]}
    serving = [workers.start(name=name, wait=False, **simulated) for name in ("kill-a", "kill-b")]
    for worker in serving:  # both boot at once: the test waits for the slower, not for the sum
        workers.wait_online(worker)
    with SeedgridClient(persistent_redis.url) as client:
        jobs = [
            client.submit(
                JobRequest(model="simulated", prompts=[f"job {i}"], seeds=list(range(4)), steps=10, width=64, height=64)
            )
            for i in range(36)
        ]
        kills, spare = 0, None
        deadline = time.monotonic() + 180
        while kills < KILLS:
            assert time.monotonic() < deadline, f"only {kills} kills in time"
            online = {w.name for w in client.workers()}
            if spare is None:
                spare = workers.start(name=f"spare-{kills}", wait=False, **simulated)
            if spare.name not in online:
                time.sleep(0.1)
                continue
            statuses = [client.status(j) for j in jobs]
            assert not all(s.state.finished for s in statuses), f"jobs ran out before {KILLS} kills"
            # Not a job killed twice already: three deaths in one turn make a job fail on purpose (tested above).
            running = {s.worker for s in statuses if s.state == JobState.RUNNING and s.attempts <= 2}
            victims = [w for w in serving if w.name in running]
            if not victims:
                time.sleep(0.02)
                continue
            victims[0].process.send_signal(signal.SIGKILL)
            victims[0].process.wait(10)
            kills += 1
            serving[serving.index(victims[0])] = spare
            spare = None
        statuses = [client.wait(j, timeout=300) for j in jobs]
        records = [client.images(j) for j in jobs]
    redelivered = sum(s.attempts - 1 for s in statuses)
    stored = sum(len(r) for r in records)
    with capsys.disabled():
        print(
            f"\nkill -9: {kills} kills, {len(jobs)} jobs, {sum(s.state == JobState.SUCCEEDED for s in statuses)} "
            f"succeeded, {redelivered} redeliveries, {stored} images stored for {4 * len(jobs)} items"
        )
    assert all(s.state == JobState.SUCCEEDED for s in statuses), [s.error for s in statuses if s.error]
    assert all([r.index for r in rs] == list(range(4)) for rs in records)  # each index exactly once
    assert stored == 4 * len(jobs) and redelivered >= KILLS // 2
