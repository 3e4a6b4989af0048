"""Live previews: latent-to-RGB projections made every few steps, published through Redis."""

import io

import numpy as np
import pytest
import redis
import torch
from diffusers import DPMSolverMultistepScheduler, EulerDiscreteScheduler
from PIL import Image

from seedgrid.shared.job import ImageRecord, JobState
from seedgrid.shared.jobstore import JobStore
from seedgrid.shared.request import JobRequest
from seedgrid.worker import engine as engine_module
from seedgrid.worker.engine import JobCancelled, PipelineEngine
from seedgrid.worker.preview import encode_preview, latents_to_rgb, preview_interval, sigma_normalized
from tests.helpers import wait_until


@pytest.fixture(scope="module")
def engine(tiny_engine) -> PipelineEngine:
    return tiny_engine


def job(**settings) -> JobRequest:
    base = dict(prompts=["a red fox in the snow"], seeds=[1, 2], width=96, height=64, steps=12)
    return JobRequest(**(base | settings))


class Previews:
    """Records previews by (step, item index) as pixel arrays; optionally cancels at a step."""

    def __init__(self, cancel_at: int | None = None):
        self.cancel_at = cancel_at
        self.by_step: dict[int, dict[int, np.ndarray]] = {}
        self.sizes: set[tuple[int, int]] = set()

    def on_step(self, step: int, steps: int, batch) -> None:
        if step == self.cancel_at:
            raise JobCancelled("test")

    def on_preview(self, batch, step, images) -> None:
        assert step not in self.by_step, f"two previews at step {step}"
        assert len(images) == len(batch)
        self.sizes |= {image.size for image in images}
        self.by_step[step] = {
            item.index: np.asarray(image, dtype=np.int16) for item, image in zip(batch, images, strict=True)
        }


def run(engine: PipelineEngine, request: JobRequest, previews: Previews) -> None:
    engine.run(request, request.items(), previews.on_step, lambda batch, images: None, previews.on_preview)


# --- the projection ----------------------------------------------------------------------------


def test_latents_to_rgb_is_a_linear_projection_at_latent_size():
    latents = torch.zeros((2, 4, 8, 12), dtype=torch.float16)
    latents[1, 3] = 1.0  # the fourth channel alone: dark blue-ish shift below grey
    latents[1, 0, 0, 0] = float("nan")
    grey, fourth = latents_to_rgb(latents)
    assert grey.size == fourth.size == (12, 8) and grey.mode == "RGB"
    assert set(np.asarray(grey).reshape(-1).tolist()) == {128}
    assert tuple(np.asarray(fourth)[4, 4]) == (104, 93, 67)  # round((1 + (-0.184, -0.271, -0.473)) * 127.5)
    assert Image.open(io.BytesIO(encode_preview(fourth))).size == (12, 8)


def test_default_interval_is_about_a_fifth_of_the_steps_and_at_most_five():
    assert [preview_interval(steps) for steps in (1, 4, 10, 12, 20, 25, 60, 150)] == [1, 1, 2, 2, 4, 5, 5, 5]


# --- the engine --------------------------------------------------------------------------------


def test_previews_at_every_interval_step_one_per_item_at_latent_size(engine):
    previews = Previews()
    run(engine, job(), previews)
    assert sorted(previews.by_step) == [2, 4, 6, 8, 10]  # every 12 // 5 steps; none at the final step
    assert previews.sizes == {(12, 8)}  # 96x64 pixels, 1/8 of it
    for step, images in previews.by_step.items():
        assert sorted(images) == [0, 1]
        assert np.abs(images[0] - images[1]).mean() > 1.0, f"seeds 1 and 2 look the same at step {step}"
    first, last = previews.by_step[2][0], previews.by_step[10][0]
    assert np.abs(first - last).mean() > 1.0, "the preview did not change between steps"


def test_multi_pass_scheduler_previews_each_step_once(engine, monkeypatch):
    monkeypatch.setattr(engine, "preview_every", 2)
    previews = Previews()  # asserts no step is previewed twice
    run(engine, job(scheduler="heun", steps=7), previews)
    assert sorted(previews.by_step) == [2, 4, 6]


def test_euler_family_latents_are_scaled_back_by_their_sigma_before_projection():
    latents = torch.full((1, 4, 2, 2), 10.0)
    euler = EulerDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    euler.set_timesteps(10)
    assert torch.equal(sigma_normalized(latents, euler), latents)  # no step taken yet
    euler.step(torch.zeros_like(latents), euler.timesteps[0], latents)  # now at the second sigma
    sigma = float(euler.sigmas[1])
    assert sigma > 5 and torch.allclose(sigma_normalized(latents, euler), latents / (sigma**2 + 1) ** 0.5)
    dpm = DPMSolverMultistepScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    dpm.set_timesteps(10)
    dpm.step(torch.zeros_like(latents), dpm.timesteps[0], latents)
    assert torch.equal(sigma_normalized(latents, dpm), latents)  # variance-preserving latents stay as they are


def test_no_previews_when_disabled_or_not_asked_for(engine, monkeypatch):
    projections: list[int] = []
    real = engine_module.latents_to_rgb
    monkeypatch.setattr(engine_module, "latents_to_rgb", lambda z: projections.append(len(z)) or real(z))

    monkeypatch.setattr(engine, "preview_every", 0)
    previews = Previews()
    run(engine, job(), previews)
    assert previews.by_step == {} and projections == []

    monkeypatch.setattr(engine, "preview_every", None)
    request = job()
    engine.run(request, request.items(), lambda *step: None, lambda batch, images: None)  # no on_preview
    assert projections == []


def test_cancel_stops_previews_too(engine, monkeypatch):
    monkeypatch.setattr(engine, "preview_every", 1)
    previews = Previews(cancel_at=3)
    with pytest.raises(JobCancelled):
        run(engine, job(steps=10), previews)
    assert sorted(previews.by_step) == [1, 2]


# --- the store ---------------------------------------------------------------------------------


def test_store_keeps_the_latest_preview_until_the_image_is_stored(redis_url):
    store = JobStore(redis.Redis.from_url(redis_url), ttl=600)
    assert store.preview("p-job", 0) is None
    store.store_preview("p-job", 0, 5, b"first")
    store.store_preview("p-job", 0, 10, b"second")
    store.store_preview("p-job", 1, 10, b"other item")
    assert store.preview("p-job", 0) == (10, b"second")
    assert 0 < store.redis.ttl("seedgrid:job:p-job:preview:0") <= 600
    record = ImageRecord(job_id="p-job", index=0, row=0, col=0, prompt="p", seed=1, worker="w", seconds=1.0)
    assert store.store_image(record, b"png")
    assert store.preview("p-job", 0) is None
    assert store.preview("p-job", 1) == (10, b"other item")


# --- through Redis and a real worker -----------------------------------------------------------


def test_preview_of_a_running_job_reaches_the_client_and_the_job_can_be_cancelled(client, tiny_worker):
    request = JobRequest(prompts=["a slow job"], seeds=[1, 2, 3, 4], steps=60, width=128, height=128)
    job_id = client.submit(request)

    def preview_while_running():
        status, preview = client.status(job_id), client.preview(job_id, 2)
        if preview and status.state == JobState.RUNNING and client.images(job_id) == []:
            return preview

    step, jpeg = wait_until(preview_while_running, message="a preview while the job runs")
    assert 1 <= step < request.steps
    image = Image.open(io.BytesIO(jpeg))
    assert image.format == "JPEG" and image.size == (16, 16)
    client.cancel(job_id)
    assert client.wait(job_id, timeout=60).state == JobState.CANCELLED
    assert client.images(job_id) == []
    assert client.preview(job_id, 2)[0] >= step  # a cancelled cell keeps its last preview until the TTL
