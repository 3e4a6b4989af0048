"""Leases: a killed worker's job is taken over within seconds, once, by a live worker, with default settings."""

import json
import signal
import threading
import time
import uuid

import pytest

from seedgrid.client.api import SeedgridClient
from seedgrid.shared import names
from seedgrid.shared.embedded_redis import EmbeddedRedis
from seedgrid.shared.job import JobState
from seedgrid.shared.jobstore import JobStore
from seedgrid.shared.leases import Leases, lease_seconds, renew_seconds
from seedgrid.shared.mergepool import MergePool
from seedgrid.shared.redis_conn import connect
from seedgrid.shared.request import JobRequest
from seedgrid.worker.job_runner import run_job
from seedgrid.worker.runtime import WorkerRuntime
from seedgrid.worker.simulated import SIMULATED_MODEL_NAME, SimulatedEngine
from tests.conftest import WorkerFactory

DEFAULT_VISIBILITY_TIMEOUT = "7200"  # the default: Celery's redelivery must not be what rescues the job
SECONDS_PER_IMAGE = 0.5
# The kill comes after the first batch is stored (up to 8 images): 8-10 of 16 are left for the survivor after
# the takeover (the README quotes the printed figure). 32 only added 8 s of images after the takeover.
IMAGES = 16
TAKEOVER_BOUND = lease_seconds() + renew_seconds() + 3.0  # lease lapse + one scan + slack for a busy machine


@pytest.mark.processes
def test_a_killed_workers_job_finishes_on_the_other_worker_within_seconds(tmp_path):
    with EmbeddedRedis() as redis_server:  # its own Redis: no other test's worker may take this job
        factory = WorkerFactory(redis_server.url, tmp_path, visibility_timeout=DEFAULT_VISIBILITY_TIMEOUT)
        try:
            args = {"model": "simulated", "extra_args": ["--simulated-seconds", str(SECONDS_PER_IMAGE)]}
            # Both boot at once: the test waits for the slower of the two, not for their sum.
            workers = {w.name: w for w in (factory.start(name=n, wait=False, **args) for n in ("alpha", "beta"))}
            for worker in workers.values():
                factory.wait_online(worker)
            request = JobRequest(
                model="simulated", prompts=["a long job"], seeds=list(range(IMAGES)), steps=8, width=64, height=64
            )
            with SeedgridClient(redis_server.url) as client:
                job_id = client.submit(request)
                deadline = time.monotonic() + 120
                while not ((s := client.status(job_id)).images_done >= 1 and s.state == JobState.RUNNING):
                    assert time.monotonic() < deadline, "the job never ran"
                    time.sleep(0.02)
                victim = workers[s.worker]
                victim.process.send_signal(signal.SIGKILL)
                killed_at = time.monotonic()
                victim.process.wait(10)
                images_at_kill = len(client.images(job_id))

                # (b) from the kill on: how long the record still says running on the dead worker
                last_running_on_victim = 0.0
                states_seen = set()
                while not (status := client.status(job_id)).state.finished:
                    assert time.monotonic() - killed_at < 300, f"the job never finished: {status}"
                    states_seen.add((status.state, status.worker, status.lost_worker))
                    if status.state in (JobState.STARTED, JobState.RUNNING) and status.worker == victim.name:
                        last_running_on_victim = time.monotonic() - killed_at
                    time.sleep(0.02)
                seconds = time.monotonic() - killed_at
                print(
                    f"\nkill -9 to finish: {seconds:.1f} s ({IMAGES - images_at_kill} images left at the kill, "
                    f"{SECONDS_PER_IMAGE} s each; running on the dead worker for {last_running_on_victim:.1f} s)"
                )

                assert status.state == JobState.SUCCEEDED, status.error
                survivor = next(name for name in workers if name != victim.name)
                assert status.worker == survivor and status.lost_worker == victim.name
                assert last_running_on_victim <= TAKEOVER_BOUND, states_seen
                remaining_generation = (IMAGES - images_at_kill) * SECONDS_PER_IMAGE
                assert seconds < 30 + remaining_generation, f"{seconds:.1f} s: far from the visibility timeout?"
                records = client.images(job_id)
                assert [r.index for r in records] == list(range(IMAGES))  # each image stored once
                assert {r.worker for r in records[images_at_kill:]} == {survivor}
        finally:
            factory.stop_all()


# -- in this process, on a real Redis


class WorkerDied(BaseException):
    """The worker process stopped (as with kill -9) in the middle of a turn: nothing after it runs."""


class DyingEngine(SimulatedEngine):
    """The simulated engine, instantly, stopping the process after its first batch is stored."""

    def __init__(self) -> None:
        super().__init__(seconds_per_image=0.0, max_batch=2)

    def run(self, request, items, on_step, on_batch, on_preview=None) -> None:
        def on_batch_then_die(batch, images) -> None:
            on_batch(batch, images)
            raise WorkerDied

        super().run(request, items, on_step, on_batch_then_die, on_preview)


class CountingEngine(SimulatedEngine):
    def __init__(self) -> None:
        super().__init__(seconds_per_image=0.0, max_batch=8)
        self.made: list[int] = []

    def run(self, request, items, on_step, on_batch, on_preview=None) -> None:
        self.made += [item.seed for item in items]
        super().run(request, items, on_step, on_batch, on_preview)


@pytest.fixture(scope="module")
def redis_server():
    with EmbeddedRedis() as server:
        yield server


@pytest.fixture
def store(redis_server):
    client = connect(redis_server.url, socket_timeout=10)
    yield JobStore(client)
    client.close()


def submitted(store: JobStore, seeds: list[int]) -> tuple[str, JobRequest]:
    request = JobRequest(model=SIMULATED_MODEL_NAME, prompts=["leased"], seeds=seeds, steps=2, width=64, height=64)
    job_id = uuid.uuid4().hex
    store.create(job_id, request, "lease-tests")
    return job_id, request


def let_lapse(store: JobStore, job_id: str) -> None:
    """What the clock does to a lease nobody renews: the key expires, the set's score is in the past."""
    store.redis.pexpire(names.job_lease_key(job_id), 1)
    store.redis.zadd(names.LEASES_KEY, {job_id: int(time.time() * 1000) - 1})
    time.sleep(0.01)


def test_a_lapsed_lease_is_taken_over_by_exactly_one_of_two_concurrent_takers(store, redis_server):
    takers = [Leases(connect(redis_server.url, socket_timeout=10)) for _ in range(2)]
    for _ in range(20):
        job_id, request = submitted(store, [1])
        assert MergePool(store.redis, store.ttl).start_own(job_id, "gone", request, turn=0)
        store.mark_started(job_id, "gone", 0, phase="loading model tiny")  # it died loading the model
        let_lapse(store, job_id)
        assert job_id in takers[0].lapsed()
        results: list = [None, None]
        barrier = threading.Barrier(2)

        def take(i: int, job_id: str = job_id) -> None:
            barrier.wait()
            results[i] = takers[i].take_over(job_id)

        threads = [threading.Thread(target=take, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        won = [r for r in results if r is not None]
        assert len(won) == 1, results
        assert won[0].lost_worker == "gone" and won[0].turn == 0 and won[0].priority == 3
        assert json.loads(won[0].request)["seeds"] == [1]
        status = store.status(job_id)
        assert status.state == JobState.QUEUED and status.lost_worker == "gone" and status.worker == ""
        assert status.phase == ""  # queued again: no worker is loading anything for it
        assert job_id not in takers[0].lapsed() and takers[1].take_over(job_id) is None
    for taker in takers:
        taker.redis.close()


def test_a_renewed_lease_is_never_taken_over_and_a_taken_one_is_not_renewed(store):
    leases = Leases(store.redis)
    job_id, request = submitted(store, [1])
    assert MergePool(store.redis, store.ttl).start_own(job_id, "alive", request, turn=0)
    for _ in range(3):
        assert leases.renew([job_id], "alive") == []
        assert job_id not in leases.lapsed() and leases.take_over(job_id) is None
    # Even a score that says lapsed (a renewal racing the scan) is not taken while the key lives.
    store.redis.zadd(names.LEASES_KEY, {job_id: 0})
    assert leases.take_over(job_id) is None
    assert store.status(job_id).state == JobState.STARTED and store.status(job_id).worker == "alive"
    # Its worker stopped renewing: taken over once; the late renewal learns it lost the job.
    let_lapse(store, job_id)
    assert leases.take_over(job_id) is not None
    assert leases.renew([job_id], "alive") == [job_id]
    assert not store.redis.exists(names.job_lease_key(job_id))


def test_the_old_message_after_a_takeover_runs_nothing(store):
    job_id, request = submitted(store, list(range(6)))
    raw = request.model_dump(mode="json")
    dying = WorkerRuntime(engine=DyingEngine(), store=store, name="dying", merge=False)
    with pytest.raises(WorkerDied):
        run_job(dying, job_id, raw, turn=0)
    assert len(store.images(job_id)) == 2 and dying.held.snapshot() == []  # its lease is left to lapse
    survivor = WorkerRuntime(engine=CountingEngine(), store=store, name="survivor", merge=False)
    assert run_job(survivor, job_id, raw, turn=0)["state"] == "running"  # leased by "dying": not run yet
    assert survivor.engine.made == []

    let_lapse(store, job_id)
    takeover = survivor.leases.take_over(job_id)
    assert takeover is not None and takeover.lost_worker == "dying"
    assert store.status(job_id).state == JobState.QUEUED
    result = run_job(survivor, job_id, json.loads(takeover.request), turn=takeover.turn)
    assert result["state"] == "succeeded" and survivor.engine.made == [2, 3, 4, 5]
    before = store.status(job_id)
    assert before.lost_worker == "dying" and before.attempts == 2

    # The old message, delivered again by Celery after the visibility timeout: acknowledged, nothing runs.
    assert run_job(survivor, job_id, raw, turn=0) == {"job_id": job_id, "state": "succeeded"}
    assert survivor.engine.made == [2, 3, 4, 5] and [r.index for r in store.images(job_id)] == list(range(6))
    after = store.status(job_id)
    assert after.state == JobState.SUCCEEDED and after.attempts == before.attempts
    assert not store.redis.exists(names.job_lease_key(job_id))
    assert job_id not in survivor.leases.lapsed()


def test_the_lost_workers_message_of_a_turn_already_done_is_acknowledged(store):
    job_id, request = submitted(store, list(range(6)))
    raw = request.model_dump(mode="json")
    with pytest.raises(WorkerDied):
        run_job(WorkerRuntime(engine=DyingEngine(), store=store, name="dying", merge=False), job_id, raw, turn=0)
    survivor = WorkerRuntime(engine=CountingEngine(), store=store, name="survivor", merge=False)
    survivor.turn_images = 2
    let_lapse(store, job_id)
    takeover = survivor.leases.take_over(job_id)
    assert takeover is not None and takeover.turn == 0
    sent: list[int] = []
    assert run_job(survivor, job_id, raw, turn=0, requeue=sent.append)["state"] == "queued"
    assert sent == [1] and survivor.engine.made == [2, 3]
    # Between two turns, nobody holds the lease: the lost worker's turn-0 message arrives late.
    assert run_job(survivor, job_id, raw, turn=0, requeue=sent.append)["state"] == "queued"
    assert sent == [1] and survivor.engine.made == [2, 3]
    assert run_job(survivor, job_id, raw, turn=1, requeue=sent.append)["state"] == "succeeded"
    assert survivor.engine.made == [2, 3, 4, 5] and [r.index for r in store.images(job_id)] == list(range(6))
