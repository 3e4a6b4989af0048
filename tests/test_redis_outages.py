"""Redis that goes silent or away under a worker: a partition mid-job, an outage as a delivery starts.

The worker reaches Redis through a proxy that the test breaks (tests/tcp_proxy.py); the test's client
talks to Redis directly. Default visibility timeout: Celery's redelivery must not be what saves a job.
"""

import time
import uuid

import pytest

from seedgrid.client.api import SeedgridClient
from seedgrid.shared import names
from seedgrid.shared.embedded_redis import EmbeddedRedis
from seedgrid.shared.job import JobState, JobStatus
from seedgrid.shared.orphans import GRACE_SECONDS
from seedgrid.shared.request import JobRequest
from tests.conftest import WorkerFactory
from tests.helpers import wait_until
from tests.tcp_proxy import FaultyProxy, Trigger

pytestmark = pytest.mark.processes

DEFAULT_VISIBILITY_TIMEOUT = "7200"
PARTITION_SECONDS = 20
# Longer than redis-py's own retries ride out (about 7 s), so only the runner's waiting saves the job.
OUTAGE_SECONDS = 15
# Long enough that kombu's write of the delivered message to its unacknowledged set times out.
IN_TRANSIT_SECONDS = 8


@pytest.fixture
def proxied(tmp_path):
    with EmbeddedRedis() as server:
        proxy = FaultyProxy(server.url)
        factory = WorkerFactory(proxy.url, tmp_path, visibility_timeout=DEFAULT_VISIBILITY_TIMEOUT)
        try:
            yield server, proxy, factory
        finally:
            proxy.heal()
            factory.stop_all()
            proxy.close()


def small(prompt: str, images: int) -> JobRequest:
    return JobRequest(model="simulated", prompts=[prompt], seeds=list(range(images)), steps=4, width=64, height=64)


def finished_after(client: SeedgridClient, job_id: str, trigger: Trigger, timeout: float, what: str) -> JobStatus:
    """Wait for the job, print the seconds from the fault to its end, check it succeeded with both images."""
    assert trigger.fired.wait(60), "the task never reached the worker"
    status = client.wait(job_id, timeout=timeout)
    assert trigger.fired_at is not None
    print(f"{what}: the job was done {time.monotonic() - trigger.fired_at:.1f} s after the fault began")
    assert status.state == JobState.SUCCEEDED, status
    assert sorted(r.index for r in client.images(job_id)) == [0, 1]
    return status


def test_a_20_s_partition_mid_job_neither_hangs_the_worker_nor_loses_or_doubles_an_image(proxied):
    server, proxy, factory = proxied
    # Batches of one image in one turn: images are stored one by one, before, during and after the partition.
    args = ["--simulated-seconds", "1", "--max-batch", "1", "--turn-images", "0"]
    worker = factory.start(name="partitioned", model="simulated", extra_args=args)
    with SeedgridClient(server.url) as client:
        job_id = client.submit(small("across a partition", 6))
        wait_until(lambda: client.status(job_id).images_done >= 1, timeout=60, message="a first image")
        assert client.status(job_id).images_done < 6
        proxy.partition()  # every open connection of the worker goes silent for good
        time.sleep(PARTITION_SECONDS)
        proxy.heal()  # new connections work again
        healed = time.monotonic()
        status = client.wait(job_id, timeout=120)
        print(f"partition of {PARTITION_SECONDS} s: the job finished {time.monotonic() - healed:.1f} s after it ended")
        assert status.state == JobState.SUCCEEDED, status
        assert sorted(r.index for r in client.images(job_id)) == list(range(6)) and status.images_done == 6
        # Its heartbeat's connection went silent too: it advertises itself again within a call's bound.
        assert client.wait_for_worker("simulated", timeout=60).name == worker.name
        # Celery's connections went silent too: stale ones time out (before, they waited for ever).
        after = client.submit(small("after the partition", 2))
        assert client.wait(after, timeout=90).state == JobState.SUCCEEDED
    assert worker.alive()


def test_redis_going_away_as_a_delivery_starts_delays_the_job_without_losing_it(proxied):
    server, proxy, factory = proxied
    with SeedgridClient(server.url) as client:
        job_id = client.submit(small("outage at the start", 2), require_worker=False)
        # Redis goes away as the runner first reads the job's record (after Celery took the task).
        trigger = proxy.break_when(names.job_key(job_id), "refuse", OUTAGE_SECONDS, to_redis=True)
        worker = factory.start(
            name="at-start", model="simulated", extra_args=["--simulated-seconds", "0.1"], wait=False
        )
        status = finished_after(client, job_id, trigger, OUTAGE_SECONDS + 60, f"Redis away {OUTAGE_SECONDS} s")
        assert status.attempts == 1
    assert worker.alive()


def test_a_task_lost_in_transit_is_sent_again_by_an_idle_worker(proxied):
    server, proxy, factory = proxied
    worker = factory.start(name="in-transit", model="simulated", extra_args=["--simulated-seconds", "0.1"])
    prompt = f"lost in transit {uuid.uuid4().hex}"
    # The partition starts as Redis hands the task over (BRPOP popped it): kombu cannot record it as
    # delivered, so the message is gone, in no queue and not unacknowledged.
    trigger = proxy.break_when(prompt, "partition", IN_TRANSIT_SECONDS)
    with SeedgridClient(server.url) as client:
        job_id = client.submit(small(prompt, 2))
        finished_after(client, job_id, trigger, GRACE_SECONDS + 90, f"task lost in transit ({IN_TRANSIT_SECONDS} s)")
    assert worker.alive()
