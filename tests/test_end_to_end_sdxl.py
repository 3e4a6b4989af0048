"""`seedgrid worker --model tiny-xl` serves jobs through a real Redis and Celery, like `tiny`."""

import io

import numpy as np
import pytest
from PIL import Image

from seedgrid.client.api import SeedgridClient
from seedgrid.shared.embedded_redis import EmbeddedRedis
from seedgrid.shared.job import JobState
from seedgrid.shared.pngmeta import read_png_metadata
from seedgrid.shared.request import JobRequest
from seedgrid.worker.engine import PipelineEngine
from seedgrid.worker.models.loading import load_pipeline
from tests.conftest import WorkerFactory
from tests.helpers import pixels

PROMPT = "a castle on a hill at night"


@pytest.fixture
def own_redis(tmp_path):
    """A Redis of its own, so no other test sees this worker: (client, worker factory)."""
    with EmbeddedRedis() as redis_server:
        factory = WorkerFactory(redis_server.url, tmp_path)
        try:
            with SeedgridClient(redis_server.url) as client:
                yield client, factory
        finally:
            factory.stop_all()


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
    pngs = {r.seed: client.image_png(job_id, r.index) for r in client.images(job_id)}
    assert sorted(pngs) == [2, 5]
    for seed, png in pngs.items():
        meta = read_png_metadata(png)
        assert meta.request == request and meta.item.seed == seed
        assert f"Seed: {seed}, Size: 72x64, Model: tiny-xl" in meta.parameters
        assert Image.open(io.BytesIO(png)).size == (72, 64)

    # The same seed alone, in this process: the same image as the worker's, made in a batch of two.
    alone = request.model_copy(update={"seeds": [5]})
    made: list = []
    engine = PipelineEngine(load_pipeline("tiny-xl", "cpu"), "tiny-xl", "cpu")
    engine.run(alone, alone.items(), lambda *_: None, lambda batch, images: made.extend(images))
    here = np.asarray(made[0].convert("RGB"), dtype=np.int16)
    assert int(np.abs(pixels(pngs[5]) - here).max()) <= 2
    assert int(np.abs(pixels(pngs[2]) - pixels(pngs[5])).max()) > 20
