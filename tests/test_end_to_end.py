"""Prompts and seeds in, PNGs out: through a real Redis and a real worker process with the tiny model."""

from pathlib import Path

import pytest
from PIL import Image

from seedgrid.client.api import SeedgridClient
from seedgrid.client.save import save_job
from seedgrid.shared.embedded_redis import EmbeddedRedis
from seedgrid.shared.job import JobState
from seedgrid.shared.pngmeta import read_png_metadata
from seedgrid.shared.request import JobRequest
from tests.conftest import WorkerFactory
from tests.helpers import max_pixel_diff, pngs_by_seed

PROMPT = "portrait photo of a old warrior chief"


@pytest.fixture(scope="module")
def other_stack(tmp_path_factory):
    """A second, separate worker process on its own Redis: its URL, factory and worker, not yet online."""
    with EmbeddedRedis() as other_redis:
        factory = WorkerFactory(other_redis.url, tmp_path_factory.mktemp("other-worker"))
        try:
            yield other_redis.url, factory, factory.start(name="other-process", wait=False)
        finally:
            factory.stop_all()


@pytest.fixture(scope="module", autouse=True)
def start_the_other_worker_first(request):
    """It boots (6-10 s of imports) while the module's first tests run, when a selected test uses it."""
    if any("other_stack" in item.fixturenames and item.module is request.module for item in request.session.items):
        request.getfixturevalue("other_stack")


def run(client: SeedgridClient, request: JobRequest, timeout: float = 120):
    job_id = client.submit(request)
    status = client.wait(job_id, timeout=timeout)
    assert status.state == JobState.SUCCEEDED, status.error
    return job_id, status


def test_eight_seeds_give_eight_pngs_with_matching_metadata(client, tiny_worker):
    request = JobRequest(
        prompts=[PROMPT],
        seeds=list(range(8)),
        steps=20,
        negative_prompt="blurry",
        scheduler="euler_a",
        guidance=6.0,
        width=256,
        height=192,
    )
    job_id, status = run(client, request)
    records = client.images(job_id)
    assert [r.index for r in records] == list(range(8))
    assert status.images_done == 8 and status.attempts == 1 and status.worker == tiny_worker.name
    for record in records:
        png = client.image_png(job_id, record.index)
        meta = read_png_metadata(png)
        assert meta.request == request
        assert meta.item.seed == record.seed == record.index and meta.item.prompt == PROMPT
        assert f"Seed: {record.seed}, Size: 256x192, Model: tiny" in meta.parameters
        assert "Negative prompt: blurry" in meta.parameters and "Sampler: Euler a" in meta.parameters
        assert Image.open(__import__("io").BytesIO(png)).size == (256, 192)
    assert [j.job_id for j in client.jobs()] == [job_id]
    # Nobody reads a Celery result: the worker stores none (the job record is the result).
    assert client.redis.get(f"celery-task-meta-{job_id}") is None


def test_seed_gives_same_pixels_alone_in_a_batch_and_on_another_worker(client, tiny_worker, other_stack):
    batch_id, _ = run(client, JobRequest(prompts=[PROMPT], seeds=list(range(8)), steps=10, width=128, height=128))
    alone_id, _ = run(client, JobRequest(prompts=[PROMPT], seeds=[5], steps=10, width=128, height=128))
    in_batch = pngs_by_seed(client, batch_id)[(PROMPT, 5)]
    alone = pngs_by_seed(client, alone_id)[(PROMPT, 5)]
    assert max_pixel_diff(in_batch, alone) <= 2
    assert max_pixel_diff(in_batch, pngs_by_seed(client, batch_id)[(PROMPT, 4)]) > 20

    other_url, factory, other = other_stack  # a second, separate worker process on its own Redis
    factory.wait_online(other)
    with SeedgridClient(other_url) as other_client:
        other_id, _ = run(other_client, JobRequest(prompts=[PROMPT], seeds=[5], steps=10, width=128, height=128))
        assert other_client.images(other_id)[0].worker == other.name != tiny_worker.name
        assert max_pixel_diff(pngs_by_seed(other_client, other_id)[(PROMPT, 5)], in_batch) <= 2


def test_refinement_four_prompts_at_one_seed(client, tiny_worker, tmp_path):
    prompts = [f"portrait photo of {who} warrior chief" for who in ("the oldest", "a old", "a", "a young")]
    request = JobRequest(prompts=prompts, seeds=[1], steps=25, width=128, height=128)
    job_id, status = run(client, request)
    records = client.images(job_id)
    assert [(r.row, r.col, r.prompt, r.seed) for r in records] == [(i, 0, p, 1) for i, p in enumerate(prompts)]
    images = [client.image_png(job_id, r.index) for r in records]
    assert all(max_pixel_diff(images[0], other) > 0 for other in images[1:]), "prompts must change the image"
    saved = save_job(client, status, tmp_path, "refine", "refine.png")
    grid = Image.open(saved.grid_path)
    assert grid.height > 4 * 128 and grid.width > 128  # four rows plus labels, a row-label margin


def test_prompts_by_seeds_grid(client, tiny_worker, tmp_path):
    request = JobRequest(prompts=["a red apple", "a blue car"], seeds=[3, 17, 42], steps=8, width=64, height=64)
    job_id, status = run(client, request)
    records = client.images(job_id)
    assert [(r.row, r.col, r.seed) for r in records] == [(r, c, s) for r in range(2) for c, s in enumerate([3, 17, 42])]
    saved = save_job(client, status, tmp_path, "g", "grid.png")
    assert len(saved.paths) == 6 and all(Path(p).exists() for p in saved.paths)
    assert read_png_metadata(saved.paths[4]).item.prompt == "a blue car"
    grid = Image.open(saved.grid_path)
    assert grid.width >= 3 * 64 and grid.height >= 2 * 64
