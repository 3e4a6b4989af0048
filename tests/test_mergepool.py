"""The merge pool's Redis scripts on a real Redis: what a claim takes, when a job's own delivery runs it."""

import json
import uuid

import pytest

from seedgrid.shared import names
from seedgrid.shared.embedded_redis import EmbeddedRedis
from seedgrid.shared.job import JobState
from seedgrid.shared.jobstore import JobStore
from seedgrid.shared.mergepool import MERGEABLE_MAX_IMAGES, MergePool
from seedgrid.shared.redis_conn import connect
from seedgrid.shared.request import JobRequest

SETTINGS = dict(model="simulated", width=64, height=64, steps=5)


@pytest.fixture
def store():
    """A Redis of the test's own: pools are shared by every job of the same settings."""
    with EmbeddedRedis() as server:
        yield JobStore(connect(server.url))


@pytest.fixture
def pool(store):
    return MergePool(store.redis, store.ttl)


def queued(store: JobStore, seeds=(1,), priority: int = 3, **overrides) -> tuple[str, JobRequest]:
    request = JobRequest(prompts=[f"p {uuid.uuid4().hex[:6]}"], seeds=list(seeds), **{**SETTINGS, **overrides})
    job_id = uuid.uuid4().hex
    store.create(job_id, request, "test-client", priority)
    return job_id, request


def claimed_ids(answer) -> list[str]:
    return [job_id for job_id, _, _ in answer]


def test_a_claim_takes_whole_jobs_that_fit_best_priority_then_oldest_first(store, pool):
    host, request = queued(store, seeds=[0, 1, 2])
    normal_two, _ = queued(store, seeds=[0, 1])
    normal_three, _ = queued(store, seeds=[0, 1, 2])
    high_one, _ = queued(store, priority=0)
    normal_one, _ = queued(store)
    pool.start_own(host, "w1", request)
    taken = pool.claim(host, "w1", request, room=5)
    # high first; the three-image job does not fit in the 2 left after the two-image job, the single one does
    assert claimed_ids(taken) == [high_one, normal_two, normal_one]
    assert {job_id: json.loads(raw)["seeds"] for job_id, raw, _ in taken}[normal_two] == [0, 1]
    assert [priority for _, _, priority in taken] == [0, 3, 3]
    for job_id in claimed_ids(taken):
        status = store.status(job_id)
        assert status.state == JobState.STARTED and status.merged_into == host and status.worker == "w1"
    assert store.status(host).merged_jobs == 3
    assert claimed_ids(pool.claim(host, "w1", request, room=8)) == [normal_three]


def test_a_claim_skips_other_settings_cancelled_started_and_large_jobs(store, pool):
    host, request = queued(store)
    other_steps, _ = queued(store, steps=6)
    cancelled, _ = queued(store)
    store.request_cancel(cancelled)
    running, running_request = queued(store)
    assert pool.start_own(running, "w2", running_request)
    large, _ = queued(store, seeds=range(MERGEABLE_MAX_IMAGES + 1))
    assert pool.claim(host, "w1", request, room=100) == []
    assert store.status(other_steps).state == JobState.QUEUED and store.status(large).state == JobState.QUEUED
    pool_key = names.merge_pool_key(request.batch_key())
    assert not store.redis.zscore(pool_key, cancelled) and not store.redis.zscore(pool_key, running)


def test_a_jobs_own_delivery_waits_out_a_live_claim_and_runs_after_it_lapses(store, pool):
    host, request = queued(store)
    guest, guest_request = queued(store)
    assert claimed_ids(pool.claim(host, "w1", request, room=1)) == [guest]
    assert not pool.start_own(guest, "w2", guest_request)  # the host's worker holds it
    store.redis.delete(names.job_lease_key(guest))  # the host's worker stopped renewing: it died
    assert pool.start_own(guest, "w2", guest_request)
    status = store.status(guest)
    assert status.state == JobState.STARTED and status.worker == "w2" and not status.merged_into


def test_release_gives_back_the_unfinished_jobs_of_a_host_whose_worker_died(store, pool):
    host, request = queued(store)
    finished, _ = queued(store)
    unfinished, _ = queued(store, priority=6)
    assert claimed_ids(pool.claim(host, "w1", request, room=2)) == [finished, unfinished]
    store.finish(finished, JobState.SUCCEEDED)
    given = pool.release(host)
    assert [(job_id, priority) for job_id, _, priority in given] == [(unfinished, 6)]
    status = store.status(unfinished)
    assert status.state == JobState.QUEUED and not status.merged_into and not status.worker
    assert not store.redis.exists(names.job_lease_key(unfinished), names.job_merged_key(host))
    assert store.status(host).merged_jobs == 0 and pool.release(host) == []


def test_progress_of_a_shared_batch_reports_each_job_and_returns_the_cancelled(store):
    first, _ = queued(store, seeds=[1, 2])
    second, _ = queued(store)
    store.request_cancel(second)
    cancelled = store.progress([(first, 0, 2), (second, 0, 1)], 3, 5, leases=[second], worker="w1")
    assert cancelled == {second}
    status = store.status(first)
    assert (status.state, status.step, status.steps, status.batch_size) == (JobState.RUNNING, 3, 5, 2)
    assert store.redis.get(names.job_lease_key(second)) == b"w1" and store.redis.ttl(names.job_lease_key(second)) > 0


def test_a_pool_job_without_its_request_is_claimed_with_an_empty_one_for_the_worker_to_refuse(store, pool):
    host, request = queued(store)
    broken, _ = queued(store)
    store.redis.hdel(names.job_key(broken), "request")
    assert pool.claim(host, "w1", request, room=1) == [(broken, "", 3)]
