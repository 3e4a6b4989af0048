"""The Celery task when Redis stays away longer than the runner waits: the delivery is put back, not acknowledged."""

import uuid

import pytest
from celery.exceptions import Reject

from seedgrid.shared.embedded_redis import EmbeddedRedis
from seedgrid.shared.job import JobState
from seedgrid.shared.jobstore import JobStore
from seedgrid.shared.redis_conn import connect
from seedgrid.shared.request import JobRequest
from seedgrid.worker import redis_retry
from seedgrid.worker.runtime import WorkerRuntime
from seedgrid.worker.simulated import SIMULATED_MODEL_NAME, SimulatedEngine
from seedgrid.worker.tasks import EngineTask, generate
from tests.tcp_proxy import FaultyProxy


@pytest.fixture
def behind_proxy():
    with EmbeddedRedis() as server:
        proxy = FaultyProxy(server.url)
        direct = JobStore(connect(server.url))
        runtime = WorkerRuntime(engine=SimulatedEngine(0.0), store=JobStore(connect(proxy.url)), name="in-process")
        previous = EngineTask._runtime
        EngineTask.install(runtime)
        try:
            yield proxy, direct
        finally:
            EngineTask._runtime = previous
            proxy.close()


def test_redis_away_longer_than_the_runner_waits_rejects_the_delivery_for_requeue(behind_proxy, monkeypatch):
    proxy, direct = behind_proxy
    monkeypatch.setattr(redis_retry, "RESULT_RETRY_SECONDS", 1.0)
    request = JobRequest(model=SIMULATED_MODEL_NAME, prompts=["away"], seeds=[0], steps=2, width=64, height=64)
    job_id = uuid.uuid4().hex
    direct.create(job_id, request, "outage-tests")
    proxy.refuse()
    with pytest.raises(Reject) as rejected:
        generate(job_id, request.model_dump(mode="json"))
    assert rejected.value.requeue
    assert direct.status(job_id).state == JobState.QUEUED  # untouched: the next delivery runs it
    proxy.heal()
    assert generate(job_id, request.model_dump(mode="json"))["state"] == "succeeded"
