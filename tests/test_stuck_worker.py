"""A worker whose GPU loop is stuck stops advertising itself and lets its jobs' leases lapse."""

import time
import uuid

import pytest

from seedgrid.shared import names
from seedgrid.shared.embedded_redis import EmbeddedRedis
from seedgrid.shared.jobstore import JobStore
from seedgrid.shared.redis_conn import connect
from seedgrid.shared.request import JobRequest
from seedgrid.worker.heartbeat import Heartbeat
from seedgrid.worker.lease_keeper import LeaseKeeper
from seedgrid.worker.runtime import WorkerRuntime
from seedgrid.worker.simulated import SIMULATED_MODEL_NAME, SimulatedEngine


@pytest.fixture
def runtime(monkeypatch):
    monkeypatch.setenv("SEEDGRID_STUCK_SECONDS", "2")
    with EmbeddedRedis() as server:
        store = JobStore(connect(server.url))
        yield WorkerRuntime(engine=SimulatedEngine(), store=store, name=f"stuck-{uuid.uuid4().hex[:6]}"), server.url
        store.redis.close()


def advertised(runtime: WorkerRuntime) -> bool:
    return runtime.store.redis.exists(names.worker_key(runtime.name)) == 1


def test_a_busy_worker_without_progress_drops_out_of_the_list_and_comes_back_when_it_moves(runtime):
    runtime, url = runtime
    heartbeat = Heartbeat(runtime, url)
    runtime.busy = True
    runtime.progressed()
    heartbeat.tick()
    assert advertised(runtime) and not runtime.stuck()
    runtime.last_progress = time.monotonic() - 3  # no step, batch or turn for longer than SEEDGRID_STUCK_SECONDS
    assert runtime.stuck()
    runtime.store.redis.delete(names.worker_key(runtime.name))  # as the key's TTL would, seconds later
    heartbeat.tick()
    assert not advertised(runtime)
    runtime.progressed()
    heartbeat.tick()
    assert advertised(runtime)
    runtime.busy, runtime.last_progress = False, time.monotonic() - 3  # idle for long is not stuck
    assert not runtime.stuck()


def test_a_stuck_worker_stops_renewing_its_leases_so_a_live_worker_can_take_the_job(runtime):
    runtime, url = runtime
    request = JobRequest(model=SIMULATED_MODEL_NAME, prompts=["stuck"], seeds=[0], steps=2, width=64, height=64)
    job_id = uuid.uuid4().hex
    runtime.store.create(job_id, request, "stuck-tests")
    assert runtime.pool.start_own(job_id, runtime.name, request, turn=0)
    runtime.held.add(job_id)
    keeper = LeaseKeeper(runtime, url, send=lambda *_: None)
    lease = names.job_lease_key(job_id)
    runtime.busy = True
    runtime.progressed()
    runtime.store.redis.pexpire(lease, 500)
    keeper.renew()
    assert runtime.store.redis.pttl(lease) > 1000  # renewed for the full lease
    runtime.last_progress = time.monotonic() - 3
    runtime.store.redis.pexpire(lease, 500)
    keeper.renew()
    assert runtime.store.redis.pttl(lease) <= 500  # left to lapse
