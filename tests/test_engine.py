"""The pipeline engine on the real tiny diffusers pipeline, in-process on the CPU."""

import copy

import numpy as np
import pytest
import torch
from diffusers import LCMScheduler

from seedgrid.shared.request import JobRequest, RequestError
from seedgrid.worker.engine import JobCancelled, OutOfMemory, PipelineEngine, _bad_images
from seedgrid.worker.memory import BatchLimits
from seedgrid.worker.models.loading import load_pipeline
from seedgrid.worker.models.tiny import build_tiny_pipeline
from seedgrid.worker.schedulers import SCHEDULER_CLASSES

SIZE = 64
STEPS = 3


@pytest.fixture(scope="module")
def engine(tiny_engine) -> PipelineEngine:
    return tiny_engine


@pytest.fixture
def fresh_engine() -> PipelineEngine:
    """An engine over its own pipeline, for tests that change the pipeline (slicing, weights)."""
    return PipelineEngine(load_pipeline("tiny", "cpu"), "tiny", "cpu")


def job(**settings) -> JobRequest:
    base = dict(prompts=["a red fox in the snow"], seeds=[1], width=SIZE, height=SIZE, steps=STEPS)
    return JobRequest(**(base | settings))


class Recorder:
    """Collects what the engine reports: steps, batches and images by item index."""

    def __init__(self, cancel_at: int | None = None):
        self.cancel_at = cancel_at
        self.steps: list[tuple[int, int, int]] = []
        self.batches: list[list[int]] = []
        self.images: dict[int, np.ndarray | None] = {}

    def on_step(self, step: int, steps: int, batch) -> None:
        self.steps.append((step, steps, len(batch)))
        if step == self.cancel_at:
            raise JobCancelled("test")

    def on_batch(self, batch, images) -> None:
        assert len(batch) == len(images)
        self.batches.append([item.index for item in batch])
        for item, image in zip(batch, images, strict=True):
            self.images[item.index] = None if image is None else np.asarray(image.convert("RGB"), dtype=np.int16)


def generate(engine: PipelineEngine, request: JobRequest) -> Recorder:
    rec = Recorder()
    engine.run(request, request.items(), rec.on_step, rec.on_batch)
    assert sorted(rec.images) == [item.index for item in request.items()]
    return rec


def diff(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a - b).max())


def mean_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


def to_pixels(engine: PipelineEngine, decoded: torch.Tensor) -> np.ndarray:
    image = engine.pipeline.image_processor.postprocess(decoded.float(), output_type="pil")[0]
    return np.asarray(image, dtype=np.int16)


# --- seeds and prompts -------------------------------------------------------------------------


def test_seed_gives_the_same_image_alone_and_inside_a_batch(engine):
    alone = generate(engine, job(seeds=[7]))
    batch = generate(engine, job(seeds=[3, 7, 11]))
    assert batch.batches == [[0, 1, 2]]
    assert alone.images[0].shape == (SIZE, SIZE, 3)
    assert diff(alone.images[0], batch.images[1]) <= 2
    images = batch.images
    for a, b in [(0, 1), (0, 2), (1, 2)]:
        assert mean_diff(images[a], images[b]) > 1.0, f"seeds at {a} and {b} gave the same image"


def test_two_prompts_at_one_seed_give_different_images(engine):
    rec = generate(engine, job(prompts=["a red fox in the snow", "a castle on a hill at night"], seeds=[5]))
    assert mean_diff(rec.images[0], rec.images[1]) > 1.0


# --- schedulers --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SCHEDULER_CLASSES))
def test_every_scheduler_runs_a_job_and_reports_each_step_once(engine, name):
    assert name in engine.schedulers
    rec = generate(engine, job(scheduler=name, seeds=[1, 2]))
    assert rec.steps == [(step, STEPS, 2) for step in range(1, STEPS + 1)]
    assert all(image is not None and image.shape == (SIZE, SIZE, 3) for image in rec.images.values())


def test_jobs_never_change_the_pipelines_own_scheduler(engine):
    base = engine.pipeline.scheduler
    config = copy.deepcopy(dict(base.config))
    first = generate(engine, job(scheduler="dpm++_2m")).images[0]
    for name in ("euler_a", "dpm++_2m_karras", "heun", "ddim", "pndm"):
        generate(engine, job(scheduler=name))
    assert engine.pipeline.scheduler is base
    assert dict(base.config) == config
    assert base.num_inference_steps is None  # set_timesteps never ran on the shared scheduler
    again = generate(engine, job(scheduler="dpm++_2m")).images[0]
    assert diff(first, again) == 0


def test_different_schedulers_give_different_images(engine):
    euler = generate(engine, job(scheduler="euler")).images[0]
    ddim = generate(engine, job(scheduler="ddim")).images[0]
    assert mean_diff(euler, ddim) > 1.0


def test_check_refuses_a_model_this_engine_does_not_serve(engine):
    with pytest.raises(RequestError) as err:
        engine.check(job(model="some-other-model"))
    assert err.value.field == "model"
    assert "some-other-model" in str(err.value)
    with pytest.raises(RequestError):
        engine.run(job(model="some-other-model"), job().items(), Recorder().on_step, Recorder().on_batch)


def test_check_refuses_a_scheduler_the_pipeline_is_not_compatible_with(engine):
    components = dict(engine.pipeline.components)
    components["scheduler"] = LCMScheduler.from_config(engine.pipeline.scheduler.config)
    lcm = PipelineEngine(type(engine.pipeline)(**components), "tiny", "cpu")
    assert "dpm++_2m" not in lcm.schedulers
    engine.check(job(scheduler="dpm++_2m"))  # the same request is fine for the tiny model's own scheduler
    with pytest.raises(RequestError) as err:
        lcm.check(job(scheduler="dpm++_2m"))
    assert err.value.field == "scheduler"
    assert "dpm++_2m" in str(err.value)
    rec = Recorder()
    with pytest.raises(RequestError):
        lcm.run(job(scheduler="dpm++_2m"), job().items(), rec.on_step, rec.on_batch)
    assert rec.steps == [] and rec.batches == []


# --- progress, batching, cancellation ----------------------------------------------------------


def test_progress_per_batch_and_batches_split_by_max_batch(engine, monkeypatch):
    monkeypatch.setattr(engine, "max_batch", 2)
    rec = generate(engine, job(seeds=[10, 11, 12, 13, 14]))
    assert rec.batches == [[0, 1], [2, 3], [4]]
    expected = [(s, STEPS, size) for size in (2, 2, 1) for s in range(1, STEPS + 1)]
    assert rec.steps == expected
    assert all(image is not None for image in rec.images.values())


def test_cancel_from_the_step_callback_stops_the_job(engine):
    rec = Recorder(cancel_at=2)
    request = job(seeds=[1, 2], steps=6)
    with pytest.raises(JobCancelled):
        engine.run(request, request.items(), rec.on_step, rec.on_batch)
    assert [s for s, _, _ in rec.steps] == [1, 2]
    assert rec.batches == []


# --- out of memory (simulated: generate_batch raises a CUDA OOM; more in test_oom.py) ---------


def oom_above(engine: PipelineEngine, monkeypatch, limit: int) -> list[int]:
    """Make engine.generate_batch raise a CUDA-style OOM for batches over `limit`; returns the sizes tried."""
    tried: list[int] = []
    real = engine.generate_batch

    def generate_batch(request, batch, on_step, on_preview=None):
        tried.append(len(batch))
        if len(batch) > limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(request, batch, on_step, on_preview)

    monkeypatch.setattr(engine, "generate_batch", generate_batch)
    return tried


def test_simulated_cuda_oom_splits_the_batch_and_keeps_every_image(engine, monkeypatch):
    request = job(prompts=["a red fox in the snow", "a castle on a hill at night"], seeds=[1, 2, 3])
    monkeypatch.setattr(engine, "max_batch", 8)
    monkeypatch.setattr(engine, "limits", BatchLimits())  # what it learns here stays in this test
    reference = generate(engine, request)
    assert reference.batches == [[0, 1, 2, 3, 4, 5]]

    tried = oom_above(engine, monkeypatch, limit=2)
    rec = generate(engine, request)
    assert tried == [6, 3, 2, 2, 2]
    assert engine.max_batch == 8  # the configured maximum; the batch that fit is learned for this size only
    assert engine.limits.start((SIZE, SIZE), engine.max_batch) == 2
    assert rec.batches == [[0, 1], [2, 3], [4, 5]]
    for index, image in reference.images.items():
        assert diff(rec.images[index], image) <= 2


def test_simulated_cuda_oom_at_batch_1_fails_the_job_without_slicing_and_the_next_job_runs(
    engine, fresh_engine, monkeypatch
):
    reference = generate(engine, job()).images[0]
    tried: list[int] = []
    real = fresh_engine.generate_batch

    def oom_once(request, batch, on_step, on_preview=None):
        tried.append(len(batch))
        if len(tried) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 512.00 MiB")
        return real(request, batch, on_step, on_preview)

    monkeypatch.setattr(fresh_engine, "generate_batch", oom_once)
    with pytest.raises(OutOfMemory, match=f"^out of memory at {SIZE}x{SIZE}, batch 1: try a smaller size$"):
        generate(fresh_engine, job())
    rec = generate(fresh_engine, job())
    assert tried == [1, 1]
    assert not fresh_engine.pipeline.vae.use_slicing
    processors = fresh_engine.pipeline.unet.attn_processors.values()
    assert processors and not any(type(p).__name__ == "SlicedAttnProcessor" for p in processors)  # SDPA stays
    assert diff(rec.images[0], reference) <= 2


def test_simulated_cuda_oom_at_batch_1_is_not_retried(fresh_engine, monkeypatch):
    tried = oom_above(fresh_engine, monkeypatch, limit=0)
    rec = Recorder()
    with pytest.raises(OutOfMemory):
        fresh_engine.run(job(), job().items(), rec.on_step, rec.on_batch)
    assert tried == [1]  # batch 1 cannot be made smaller: the job fails, with no slicing tried
    assert rec.batches == []


def test_an_error_that_is_not_out_of_memory_is_not_retried(engine, monkeypatch):
    tried: list[int] = []

    def broken(request, batch, on_step, on_preview=None):
        tried.append(len(batch))
        raise RuntimeError("something else went wrong")

    monkeypatch.setattr(engine, "generate_batch", broken)
    monkeypatch.setattr(engine, "max_batch", 8)
    with pytest.raises(RuntimeError, match="something else"):
        engine.run(job(seeds=[1, 2]), job(seeds=[1, 2]).items(), Recorder().on_step, Recorder().on_batch)
    assert tried == [2] and engine.max_batch == 8


# --- NaN and black images ----------------------------------------------------------------------


def float16_engine() -> PipelineEngine:
    """The tiny pipeline in float16 on the CPU, as it would run on a GPU."""
    return PipelineEngine(build_tiny_pipeline().to(torch.float16), "tiny", "cpu")


def latents(count: int, seed: int = 0) -> torch.Tensor:
    noise = torch.randn((count, 4, SIZE // 8, SIZE // 8), generator=torch.Generator().manual_seed(seed))
    return noise.to(torch.float16)


def test_float16_overflow_is_decoded_again_in_float32(caplog):
    engine = float16_engine()
    vae = engine.pipeline.vae
    with torch.no_grad():
        vae.decoder.conv_in.weight.mul_(1e5)  # activations past float16's 65504; fine in float32
    z = latents(2)
    z[1] = 0  # the second image sees only the bias, which stays small
    with torch.inference_mode():
        raw = vae.decode(z / vae.config.scaling_factor, return_dict=False)[0]
        assert _bad_images(raw).tolist() == [True, False]
        assert torch.isnan(raw[0]).any()

        images = engine.decode(z)

        vae32 = copy.deepcopy(vae).float()
        expected = vae32.decode(z[:1].float() / vae.config.scaling_factor, return_dict=False)[0]
    assert "float32" in caplog.text
    assert all(image is not None for image in images)
    assert diff(np.asarray(images[0], dtype=np.int16), to_pixels(engine, expected)) <= 2
    assert diff(np.asarray(images[1], dtype=np.int16), to_pixels(engine, raw[1:])) == 0


def test_nan_in_float32_as_well_gives_none():
    engine = float16_engine()
    with torch.no_grad():
        engine.pipeline.vae.decoder.conv_out.weight[0, 0, 0, 0] = float("nan")
    with torch.inference_mode():
        assert engine.decode(latents(2)) == [None, None]


def test_nan_latents_give_none_only_for_that_image():
    engine = float16_engine()
    z = latents(2)
    z[1] = float("nan")  # as when the UNet itself overflowed in float16
    with torch.inference_mode():
        images = engine.decode(z)
    assert images[0] is not None and images[1] is None


def test_black_image_from_a_float32_decoder_is_none(fresh_engine):
    with torch.no_grad():
        fresh_engine.pipeline.vae.decoder.conv_out.weight.zero_()
        fresh_engine.pipeline.vae.decoder.conv_out.bias.fill_(-3.0)
    with torch.inference_mode():
        assert fresh_engine.decode(latents(1).float()) == [None]


def test_bad_images_flags_nan_and_all_black_only():
    pixels = torch.rand((4, 3, 8, 8)) * 2 - 1
    pixels[0] = -1.0  # all black
    pixels[1, 1, 2, 3] = float("nan")
    pixels[2] = -1.0
    pixels[2, 0, 0, 0] = 0.5  # dark, but one pixel is lit: a real image
    assert _bad_images(pixels).tolist() == [True, True, False, False]
