"""One `seedgrid worker --models DIR --keep 1` serves an SD and an SDXL model (the tiny ones, saved as diffusers
folders) through a real Redis and Celery: interleaved jobs run grouped by model, within the documented bound."""

import io
import time

import pytest
from PIL import Image

from seedgrid.client.api import SeedgridClient
from seedgrid.shared.embedded_redis import EmbeddedRedis
from seedgrid.shared.job import JobState
from seedgrid.shared.pngmeta import read_png_metadata
from seedgrid.shared.request import JobRequest
from seedgrid.shared.workers import WorkerInfo
from tests.conftest import WorkerFactory


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    from seedgrid.worker.models.tiny import build_tiny_pipeline
    from seedgrid.worker.models.tiny_xl import build_tiny_xl_pipeline

    folder = tmp_path_factory.mktemp("models")
    build_tiny_pipeline().save_pretrained(folder / "mm-sd")
    build_tiny_xl_pipeline().save_pretrained(folder / "mm-xl")
    (folder / "notes.txt").write_text("not a model")
    return folder


@pytest.fixture
def own_redis(tmp_path):
    with EmbeddedRedis() as redis_server:
        factory = WorkerFactory(redis_server.url, tmp_path)
        try:
            with SeedgridClient(redis_server.url) as client:
                yield client, factory
        finally:
            factory.stop_all()


def heartbeat_after(client: SeedgridClient, name: str, jobs_done: int, timeout: float = 10.0) -> WorkerInfo:
    """The worker's heartbeat once it counts `jobs_done` (it is sent every 2 s)."""
    deadline = time.monotonic() + timeout
    while True:
        [info] = [w for w in client.workers() if w.name == name]
        if info.jobs_done >= jobs_done or time.monotonic() > deadline:
            return info
        time.sleep(0.2)


def job(model: str, seed: int) -> JobRequest:
    return JobRequest(model=model, prompts=[f"a lighthouse, {model}"], seeds=[seed], width=64, height=64, steps=2)


@pytest.mark.processes
def test_one_worker_serves_two_models_from_a_folder_and_groups_interleaved_jobs_by_model(own_redis, models_dir):
    client, factory = own_redis
    worker = factory.start(name="two-models", model="", extra_args=["--models", str(models_dir), "--keep", "1"])
    [info] = [w for w in client.workers() if w.name == worker.name]
    assert [(o.name, o.family, o.loaded) for o in info.models] == [("mm-sd", "sd", True), ("mm-xl", "sdxl", False)]
    assert sorted(client.models()) == ["mm-sd", "mm-xl"]

    # A first job, so that the worker is taking jobs (its heartbeat comes before Celery consumes).
    assert client.wait(client.submit(job("mm-sd", 99)), timeout=120).state == JobState.SUCCEEDED

    # Alternating models: the first (mm-xl) is taken at once and loads mm-xl; the rest wait in their queues.
    jobs = [client.submit(job(["mm-xl", "mm-sd"][seed % 2], seed)) for seed in range(8)]
    statuses = [client.wait(job_id, timeout=240) for job_id in jobs]
    assert all(s.state == JobState.SUCCEEDED for s in statuses), [s.error for s in statuses]

    # By start time: mm-xl's queued jobs all ran before the switch back (8 turns at most: SEEDGRID_MODEL_STREAK).
    order = [s.request.model for s in sorted(statuses, key=lambda s: s.started_at)]
    assert order == ["mm-xl"] * 4 + ["mm-sd"] * 4, order
    info = heartbeat_after(client, worker.name, jobs_done=9)
    assert info.model_loads == 3  # mm-sd at start, mm-xl, mm-sd again: not one per job
    assert [o.name for o in info.models if o.loaded] == ["mm-sd"]

    for status in statuses:  # each image from its own model's pipeline, with its metadata
        [record] = client.images(status.job_id)
        png = client.image_png(status.job_id, record.index)
        assert read_png_metadata(png).request == status.request
        assert Image.open(io.BytesIO(png)).size == (64, 64)


@pytest.mark.processes
def test_a_job_for_a_model_no_worker_serves_is_refused_before_queueing(own_redis, models_dir):
    client, factory = own_redis
    factory.start(name="one-folder", model="", extra_args=["--models", str(models_dir), "--keep", "1"])
    with pytest.raises(Exception, match=r"^model: no online worker serves 'tiny' \(online: mm-sd, mm-xl\)"):
        client.submit(job("tiny", 0))
