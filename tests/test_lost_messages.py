"""Queued jobs whose task message was lost in transit are sent again by an idle worker, once."""

import json
import time
import uuid

import pytest

from seedgrid.shared import names
from seedgrid.shared.embedded_redis import EmbeddedRedis
from seedgrid.shared.jobstore import JobStore
from seedgrid.shared.orphans import GRACE_SECONDS, index_queued
from seedgrid.shared.redis_conn import connect
from seedgrid.shared.request import JobRequest
from seedgrid.worker.lost_messages import LostMessages
from seedgrid.worker.runtime import WorkerRuntime
from seedgrid.worker.simulated import SIMULATED_MODEL_NAME, SimulatedEngine

MODEL_QUEUE = names.queue_for_model(SIMULATED_MODEL_NAME)


@pytest.fixture(scope="module")
def redis_server():
    with EmbeddedRedis() as server:
        yield server


@pytest.fixture
def store(redis_server):
    client = connect(redis_server.url)
    client.flushdb()
    yield JobStore(client)
    client.close()


@pytest.fixture
def sent():
    return []


@pytest.fixture
def scanner(store, sent):
    runtime = WorkerRuntime(engine=SimulatedEngine(), store=store, name="idle")
    return LostMessages(runtime, store.redis, lambda *args: sent.append(args))


def queued_long_ago(store: JobStore, priority: int = 3) -> str:
    """A job queued GRACE_SECONDS and more ago (its index says so), as a client's create leaves it."""
    request = JobRequest(model=SIMULATED_MODEL_NAME, prompts=["lost"], seeds=[0, 1], steps=2, width=64, height=64)
    job_id = uuid.uuid4().hex
    store.create(job_id, request, "lost-tests", priority)
    index_queued(store.redis, job_id, SIMULATED_MODEL_NAME, store.ttl, now=time.time() - GRACE_SECONDS - 5)
    return job_id


def message(job_id: str) -> bytes:
    return json.dumps({"headers": {"id": job_id, "task": names.TASK_GENERATE}, "body": "..."}).encode()


def test_a_queued_job_without_a_message_is_sent_again_once_on_the_second_scan(store, scanner, sent):
    job_id = queued_long_ago(store, priority=6)
    scanner.scan()
    assert sent == []  # suspected at the first scan, confirmed at the next
    scanner.scan()
    assert len(sent) == 1
    resent_id, request, turn, priority = sent[0]
    assert (resent_id, request["seeds"], turn, priority) == (job_id, [0, 1], 0, 6)
    scanner.scan()
    scanner.scan()
    assert len(sent) == 1  # indexed anew when sent: not checked again before GRACE_SECONDS


def test_a_job_whose_message_waits_or_was_just_delivered_is_left_alone(store, scanner, sent):
    waiting = queued_long_ago(store)
    store.redis.lpush(MODEL_QUEUE, message(waiting))
    for _ in range(3):
        scanner.scan()
    assert sent == []  # its queue is not empty: the worker will take it
    store.redis.delete(MODEL_QUEUE)
    store.redis.hset(names.UNACKED_KEY, "tag-1", message(waiting))
    store.redis.zadd(names.UNACKED_INDEX_KEY, {"tag-1": time.time()})
    for _ in range(3):
        scanner.scan()
    assert sent == []  # delivered a moment ago: its worker is starting it
    store.redis.zadd(names.UNACKED_INDEX_KEY, {"tag-1": time.time() - GRACE_SECONDS - 5})
    scanner.scan()
    scanner.scan()
    assert [s[0] for s in sent] == [waiting]  # delivered long ago to a worker that never started it


def test_started_or_finished_jobs_leave_the_index_and_a_busy_worker_does_not_scan(store, scanner, sent):
    started = queued_long_ago(store)
    store.mark_started(started, "another", 0)
    scanner.scan()
    scanner.scan()
    assert sent == [] and store.redis.zscore(names.queued_key(SIMULATED_MODEL_NAME), started) is None
    lost = queued_long_ago(store)
    scanner.runtime.busy = True
    scanner.scan()
    scanner.scan()
    assert sent == []
    scanner.runtime.busy = False
    scanner.scan()
    scanner.scan()
    assert [s[0] for s in sent] == [lost]


def test_two_idle_workers_send_a_lost_message_once(store, sent):
    job_id = queued_long_ago(store)
    scanners = [
        LostMessages(
            WorkerRuntime(engine=SimulatedEngine(), store=store, name=n), store.redis, lambda *a: sent.append(a)
        )
        for n in ("a", "b")
    ]
    for _ in range(3):
        for s in scanners:
            s.scan()
    assert [s[0] for s in sent] == [job_id]


def test_a_started_or_merged_job_leaves_the_queued_index_at_once(store):
    index = names.queued_key(SIMULATED_MODEL_NAME)
    own, merged = queued_long_ago(store), queued_long_ago(store)
    request = JobRequest.model_validate_json(store.redis.hget(names.job_key(own), "request"))
    pool = WorkerRuntime(engine=SimulatedEngine(), store=store, name="w").pool
    assert pool.start_own(own, "w", request)
    assert [job_id for job_id, _, _ in pool.claim(own, "w", request, room=2)] == [merged]
    assert store.redis.zscore(index, own) is None and store.redis.zscore(index, merged) is None
