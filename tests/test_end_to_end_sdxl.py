"""`seedgrid worker --model tiny-xl` serves jobs through a real Redis and Celery, like `tiny`."""

import pytest

from seedgrid.shared.job import JobState
from seedgrid.shared.request import JobRequest
from tests.family_workers import (
    check_a_seed_alone_here_gives_the_workers_image,
    checked_pngs_by_seed,
    own_redis_and_workers,
)

PROMPT = "a castle on a hill at night"


@pytest.fixture
def own_redis(tmp_path):
    """A Redis of its own, so no other test sees this worker: (client, worker factory)."""
    with own_redis_and_workers(tmp_path) as client_and_factory:
        yield client_and_factory


@pytest.mark.processes
def test_a_tiny_xl_worker_serves_a_job_and_advertises_its_family(own_redis):
    client, factory = own_redis
    worker = factory.start(name="tiny-xl-worker", model="tiny-xl")
    [info] = [w for w in client.workers() if w.name == worker.name]
    assert (info.model, info.family, info.default_width, info.default_height) == ("tiny-xl", "sdxl", 1024, 1024)

    request = JobRequest(
        model="tiny-xl", prompts=[PROMPT], seeds=[2, 5], width=72, height=64, steps=3, negative_prompt="blurry"
    )
    job_id = client.submit(request)
    status = client.wait(job_id, timeout=120)
    assert status.state == JobState.SUCCEEDED, status.error
    pngs = checked_pngs_by_seed(client, job_id, request, "Seed: {seed}, Size: 72x64, Model: tiny-xl")

    # The same seed alone, in this process: the same image as the worker's, made in a batch of two.
    check_a_seed_alone_here_gives_the_workers_image(request, pngs, seed=5, other=2)
