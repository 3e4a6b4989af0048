"""The job runner in this process, on a real Redis, with the simulated engine standing in for a pipeline.

What one delivery does (turns, resuming, duplicates, cancels, refusals, retries, shared batches) needs
no pipeline and no worker process; the tests with real worker processes cover the Celery side.
"""

import uuid

import pytest

from seedgrid.shared.embedded_redis import EmbeddedRedis
from seedgrid.shared.job import JobState
from seedgrid.shared.jobstore import JobStore
from seedgrid.shared.redis_conn import connect
from seedgrid.shared.request import JobRequest
from seedgrid.worker.job_runner import MAX_DELIVERIES, run_job
from seedgrid.worker.runtime import WorkerRuntime
from seedgrid.worker.simulated import SimulatedEngine

SIMULATED = "simulated"


class CountingEngine(SimulatedEngine):
    """The simulated engine, instantly, remembering every item it was asked to make."""

    def __init__(self, max_batch: int = 4):
        super().__init__(seconds_per_image=0.0, max_batch=max_batch)
        self.made: list[tuple[str, int]] = []

    def run(self, request, items, on_step, on_batch, on_preview=None) -> None:
        self.made += [(item.prompt, item.seed) for item in items]
        super().run(request, items, on_step, on_batch, on_preview)


@pytest.fixture(scope="module")
def store():
    with EmbeddedRedis() as server:
        redis = connect(server.url, socket_timeout=10)
        yield JobStore(redis)
        redis.close()


@pytest.fixture
def runtime(store) -> WorkerRuntime:
    return WorkerRuntime(engine=CountingEngine(), store=store, name=f"inproc-{uuid.uuid4().hex[:6]}", merge=False)


def submitted(store: JobStore, seeds: list[int], **settings) -> tuple[str, dict]:
    request = JobRequest(model=SIMULATED, prompts=["a red fox"], seeds=seeds, steps=2, width=64, height=64, **settings)
    job_id = uuid.uuid4().hex
    store.create(job_id, request, "runner-tests")
    return job_id, request.model_dump(mode="json")


def stored_indices(store: JobStore, job_id: str) -> list[int]:
    return sorted(record.index for record in store.images(job_id))


def test_a_large_job_runs_one_batch_per_turn_and_requeues_the_rest(runtime, store):
    job_id, raw = submitted(store, list(range(10)))
    requeued: list[int] = []
    outcomes = [run_job(runtime, job_id, raw, turn=turn, requeue=requeued.append)["state"] for turn in range(3)]
    assert outcomes == ["queued", "queued", "succeeded"]
    assert requeued == [1, 2]
    assert stored_indices(store, job_id) == list(range(10))
    assert [seed for _, seed in runtime.engine.made] == list(range(10))  # each image made once
    assert store.status(job_id).state == JobState.SUCCEEDED


def test_a_redelivered_job_resumes_from_its_stored_images(runtime, store):
    job_id, raw = submitted(store, list(range(6)))
    run_job(runtime, job_id, raw, turn=0, requeue=lambda _turn: None)  # the first batch of 4, then "died"
    result = run_job(runtime, job_id, raw, turn=0)  # the same turn delivered again
    assert result["state"] == "succeeded"
    assert [seed for _, seed in runtime.engine.made] == [0, 1, 2, 3, 4, 5]
    assert stored_indices(store, job_id) == list(range(6))


def test_a_finished_job_delivered_again_runs_nothing(runtime, store):
    job_id, raw = submitted(store, [7])
    assert run_job(runtime, job_id, raw)["state"] == "succeeded"
    assert run_job(runtime, job_id, raw) == {"job_id": job_id, "state": "succeeded"}
    assert len(runtime.engine.made) == 1


def test_a_job_cancelled_while_queued_never_runs(runtime, store):
    job_id, raw = submitted(store, [1, 2])
    store.request_cancel(job_id)
    assert run_job(runtime, job_id, raw)["state"] == "cancelled"
    assert runtime.engine.made == [] and stored_indices(store, job_id) == []
    assert store.status(job_id).state == JobState.CANCELLED


def test_a_request_the_worker_cannot_serve_fails_naming_the_field(runtime, store):
    job_id, raw = submitted(store, [1])
    raw["model"] = "tiny"
    result = run_job(runtime, job_id, raw)
    assert result["state"] == "failed" and result["error"].startswith("model: ")
    assert store.status(job_id).error.startswith("model: ") and runtime.engine.made == []


def test_a_job_that_keeps_stopping_its_worker_fails_after_the_last_delivery(runtime, store):
    job_id, raw = submitted(store, [1])
    for _ in range(MAX_DELIVERIES):  # deliveries whose worker died before it finished
        store.mark_started(job_id, "a-worker-that-died", 0)
    result = run_job(runtime, job_id, raw)
    assert result["state"] == "failed" and "not tried again" in result["error"]
    assert runtime.engine.made == []


def test_compatible_queued_jobs_share_the_batch_and_others_do_not(store):
    runtime = WorkerRuntime(engine=CountingEngine(max_batch=4), store=store, name="inproc-merge", merge=True)
    host_id, host_raw = submitted(store, [1], guidance=6.5)
    guest_id, _ = submitted(store, [2], guidance=6.5)
    other_id, _ = submitted(store, [3], guidance=9.0)  # other settings: never in this batch
    resent: list[str] = []
    result = run_job(runtime, host_id, host_raw, resend=lambda job_id, *_: resent.append(job_id))
    assert result["state"] == "succeeded"
    guest = store.status(guest_id)
    assert guest.state == JobState.SUCCEEDED and guest.merged_into == host_id
    assert stored_indices(store, guest_id) == [0]
    assert store.status(other_id).state == JobState.QUEUED and stored_indices(store, other_id) == []
    assert sorted(seed for _, seed in runtime.engine.made) == [1, 2] and resent == []
