"""Large jobs run in turns, so other clients' jobs interleave; priorities jump the queue."""

import uuid

from seedgrid.client.api import SeedgridClient
from seedgrid.shared.job import JobState
from seedgrid.shared.request import JobRequest
from tests.helpers import wait_until


def other_client(redis_url: str) -> SeedgridClient:
    return SeedgridClient(redis_url, client_id=f"other-{uuid.uuid4().hex[:6]}")


def test_a_single_image_is_not_starved_by_another_clients_large_job(client, redis_url, tiny_worker):
    large = client.submit(JobRequest(prompts=["a large job"], seeds=list(range(64)), steps=4, width=64, height=64))
    wait_until(lambda: client.status(large).images_done >= 8, timeout=120, message="the first turn")
    with other_client(redis_url) as other:
        single = other.submit(JobRequest(prompts=["just one"], seeds=[7], steps=4, width=64, height=64))
        done = other.wait(single, timeout=120)
    assert done.state == JobState.SUCCEEDED
    large_status = client.status(large)
    assert not large_status.state.finished and large_status.images_done < 64, "the single image waited for it all"
    final = client.wait(large, timeout=300)
    assert final.state == JobState.SUCCEEDED and final.attempts == 1
    assert [r.index for r in client.images(large)] == list(range(64))


def test_a_high_priority_job_runs_before_earlier_normal_ones(client, tiny_worker):
    blocker = client.submit(JobRequest(prompts=["blocker"], seeds=[0], steps=150, width=64, height=64))
    wait_until(lambda: client.status(blocker).state == JobState.RUNNING, message="the blocker to run")
    normal = client.submit(JobRequest(prompts=["normal"], seeds=[1], steps=2, width=64, height=64))
    high = client.submit(JobRequest(prompts=["urgent"], seeds=[2], steps=2, width=64, height=64), priority="high")
    client.cancel(blocker)
    high_done = client.wait(high, timeout=120)
    normal_done = client.wait(normal, timeout=120)
    assert high_done.state == normal_done.state == JobState.SUCCEEDED
    assert high_done.started_at < normal_done.started_at
