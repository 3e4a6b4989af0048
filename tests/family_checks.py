"""What the model family tests (test_family_sdxl.py, test_family_flux.py) share: an engine on a tiny built-in model
in this process, a recorder of what it reports, and the checks that read the same for every family."""

import numpy as np
import pytest
from PIL import Image

from seedgrid.shared.request import JobRequest
from seedgrid.worker import engine as engine_module
from seedgrid.worker.engine import JobCancelled, PipelineEngine
from seedgrid.worker.models.loading import load_pipeline

# A heartbeat as workers sent it before they told their model's family.
OLDER_WORKERS_HEARTBEAT = {
    "name": "w",
    "host": "h",
    "pid": 1,
    "model": "tiny",
    "device": "cpu",
    "schedulers": ["euler"],
    "max_batch": 8,
}


def cpu_engine(model: str, **load) -> PipelineEngine:
    """A built-in model's engine on the CPU; `load` goes to load_pipeline (dtype, vae)."""
    return PipelineEngine(load_pipeline(model, "cpu", **load), model, "cpu")


class Recorder:
    """What the engine reports, in order: steps, batch sizes, images (None for one that failed) and previews."""

    def __init__(self, cancel_at: int | None = None):
        self.cancel_at = cancel_at
        self.steps: list[int] = []
        self.batches: list[int] = []
        self.images: list[Image.Image | None] = []
        self.previews: dict[int, list[Image.Image]] = {}

    def on_step(self, step, steps, batch) -> None:
        self.steps.append(step)
        if step == self.cancel_at:
            raise JobCancelled("test")

    def on_batch(self, batch, images) -> None:
        self.batches.append(len(batch))
        self.images.extend(images)

    def on_preview(self, batch, step, images) -> None:
        assert len(images) == len(batch) and step not in self.previews
        self.previews[step] = images


def generate(engine: PipelineEngine, request: JobRequest, items=None, previews: bool = False) -> Recorder:
    rec = Recorder()
    engine.run(request, items or request.items(), rec.on_step, rec.on_batch, rec.on_preview if previews else None)
    return rec


def pixels(rec: Recorder) -> list[np.ndarray]:
    assert all(image is not None for image in rec.images)
    return [np.asarray(image.convert("RGB"), dtype=np.int16) for image in rec.images]


def diff(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a - b).max())


def mean_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


def check_seed_gives_the_same_image_alone_and_inside_a_batch(engine: PipelineEngine, job, size: int) -> None:
    """`job(**settings)` makes the family's request of `size` x `size`."""
    alone = pixels(generate(engine, job(seeds=[7])))
    batch = pixels(generate(engine, job(seeds=[3, 7, 11])))
    assert alone[0].shape == (size, size, 3)
    assert diff(alone[0], batch[1]) <= 2
    assert mean_diff(batch[0], batch[1]) > 1.0 and mean_diff(batch[1], batch[2]) > 1.0


def check_two_jobs_in_one_batch_give_what_each_gives_alone(
    engine: PipelineEngine, first: JobRequest, second: JobRequest
) -> list[np.ndarray]:
    """The two single-image jobs' items run as one batch; returns the batch's images."""
    merged = generate(engine, first, items=[*first.items(), *second.items()])
    assert merged.batches == [2]
    together = pixels(merged)
    assert diff(together[0], pixels(generate(engine, first))[0]) <= 2
    assert diff(together[1], pixels(generate(engine, second))[0]) <= 2
    return together


def check_cancel_at_step_2_stops_the_job(engine: PipelineEngine, request: JobRequest) -> None:
    rec = Recorder(cancel_at=2)
    with pytest.raises(JobCancelled):
        engine.run(request, request.items(), rec.on_step, rec.on_batch)
    assert rec.steps == [1, 2] and rec.batches == []


def previews_at_every_step(engine: PipelineEngine, request: JobRequest, monkeypatch) -> tuple[Recorder, list]:
    """The job run with a preview asked at every step; returns its recorder and the latent-to-RGB projections used."""
    projections: list = []
    real = engine_module.latents_to_rgb
    monkeypatch.setattr(engine, "preview_every", 1)
    monkeypatch.setattr(engine_module, "latents_to_rgb", lambda z, p: projections.append(p) or real(z, p))
    return generate(engine, request, previews=True), projections


def check_images_close_to_float32(half: PipelineEngine, engine: PipelineEngine, request: JobRequest) -> None:
    """A half-precision engine's images are finite (not flat) and close to the float32 engine's."""
    images = pixels(generate(half, request))
    reference = pixels(generate(engine, request))
    for image, expected in zip(images, reference, strict=True):
        assert image.std() > 10 and mean_diff(image, expected) < 4.0
