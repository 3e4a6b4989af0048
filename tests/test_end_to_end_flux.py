"""`seedgrid worker --model tiny-flux` serves jobs through Redis and Celery and refuses what Flux cannot take."""

import pytest

from seedgrid.shared.job import JobState
from seedgrid.shared.request import JobRequest, RequestError
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
def test_a_tiny_flux_worker_serves_a_job_advertises_its_family_and_refuses_what_flux_cannot_take(own_redis):
    client, factory = own_redis
    worker = factory.start(name="tiny-flux-worker", model="tiny-flux")
    [info] = [w for w in client.workers() if w.name == worker.name]
    assert (info.family, info.default_width, info.default_steps, info.default_guidance) == ("flux", 1024, 28, 3.5)
    assert (info.negative_prompt, info.size_multiple, info.schedulers) == (False, 16, ["euler"])

    request = JobRequest(
        model="tiny-flux", prompts=[PROMPT], seeds=[2, 5], width=80, height=64, steps=2, guidance=4.0, scheduler="euler"
    )
    job_id = client.submit(request)

    # Refused at submit, naming the field; nothing is queued.
    for bad, field in [
        ({"negative_prompt": "blurry"}, "negative_prompt"),
        ({"width": 72}, "width"),
        ({"scheduler": "dpm++_2m"}, "scheduler"),
    ]:
        with pytest.raises(RequestError) as refused:
            client.submit(request.model_copy(update=bad))
        assert refused.value.field == field
    assert [status.job_id for status in client.jobs()] == [job_id]
    # Queued anyway (no check at submit): the worker refuses it too.
    unchecked = client.submit(request.model_copy(update={"negative_prompt": "blurry"}), require_worker=False)

    status = client.wait(job_id, timeout=120)
    assert status.state == JobState.SUCCEEDED, status.error
    refused_status = client.wait(unchecked, timeout=60)
    assert refused_status.state == JobState.FAILED
    assert "negative_prompt: Flux models take no negative prompt" in refused_status.error

    parameters = "CFG scale: 1, Distilled CFG Scale: 4, Seed: {seed}, Size: 80x64, Model: tiny-flux"
    pngs = checked_pngs_by_seed(client, job_id, request, parameters)

    # The same seed alone, in this process: the same image as the worker's, made in a batch of two.
    check_a_seed_alone_here_gives_the_workers_image(request, pngs, seed=5, other=2)
