"""Out-of-memory recovery per request, on the real tiny pipeline.

A CPU has no GPU memory limit, so every test here SIMULATES one: SimulatedMemory makes the tiny
pipeline's UNet or VAE decoder raise torch's out-of-memory error when batch x width x height of
what it is given is over a budget.
"""

import re
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch

from seedgrid.client.api import SeedgridClient
from seedgrid.shared.embedded_redis import EmbeddedRedis
from seedgrid.shared.job import JobState
from seedgrid.shared.request import JobRequest
from seedgrid.worker.engine import OutOfMemory, PipelineEngine, is_out_of_memory
from seedgrid.worker.turn import JobItem
from tests.conftest import WorkerFactory

SMALL, LARGE = 64, 128
STEPS = 2
MAX_BATCH = 8
OOM_WORKER = Path(__file__).with_name("oom_worker.py")


class SimulatedMemory:
    """A GPU's memory limit on the CPU: the UNet (per denoising batch) and the VAE decoder raise
    torch.OutOfMemoryError past a budget in batch x width x height image pixels (None: no limit)."""

    def __init__(self, engine: PipelineEngine, monkeypatch, unet: int | None = None, vae: int | None = None):
        self.unet_budget, self.vae_budget = unet, vae
        self.batches: list[tuple[int, int, int]] = []  # (batch, width, height) of each denoising run started
        self.unet_calls = 0
        self.decodes: list[tuple[int, int, int]] = []  # (batch, width, height) given to the VAE decoder
        self.ooms = 0
        scale = engine.pipeline.vae_scale_factor
        real_noise, unet_module, decoder = engine.initial_noise, engine.pipeline.unet, engine.pipeline.vae.decoder
        real_unet, real_decoder = unet_module.forward, decoder.forward

        def initial_noise(request, generators):
            self.batches.append((len(generators), request.width, request.height))
            return real_noise(request, generators)

        def unet_forward(sample, *args, **kwargs):
            self.unet_calls += 1
            self.check(self.unet_budget, *self.batches[-1])  # the UNet's own batch is doubled by guidance
            return real_unet(sample, *args, **kwargs)

        def decoder_forward(z, *args, **kwargs):
            shape = (z.shape[0], z.shape[3] * scale, z.shape[2] * scale)
            self.decodes.append(shape)
            self.check(self.vae_budget, *shape)
            return real_decoder(z, *args, **kwargs)

        monkeypatch.setattr(engine, "initial_noise", initial_noise)
        monkeypatch.setattr(unet_module, "forward", unet_forward)
        monkeypatch.setattr(decoder, "forward", decoder_forward)

    def check(self, budget: int | None, batch: int, width: int, height: int) -> None:
        if budget is not None and batch * width * height > budget:
            self.ooms += 1
            raise torch.OutOfMemoryError(f"CUDA out of memory (simulated). Tried to allocate {batch} images")

    def batch_sizes(self) -> list[int]:
        return [batch for batch, _, _ in self.batches]


class Recorder:
    def __init__(self):
        self.batches: list[list] = []
        self.images: dict = {}

    def on_step(self, step, steps, batch) -> None:
        pass

    def on_batch(self, batch, images) -> None:
        self.batches.append(list(batch))
        for item, image in zip(batch, images, strict=True):
            key = (getattr(item, "job_id", ""), item.index)
            assert key not in self.images, f"{key} made twice"
            self.images[key] = None if image is None else np.asarray(image.convert("RGB"), dtype=np.int16)


@pytest.fixture
def engine(tiny_engine) -> PipelineEngine:
    """The session's tiny pipeline in an engine of its own, which has learned nothing yet."""
    return PipelineEngine(tiny_engine.pipeline, "tiny", "cpu", max_batch=MAX_BATCH)


def job(size: int | tuple[int, int], images: int = MAX_BATCH) -> JobRequest:
    width, height = (size, size) if isinstance(size, int) else size
    return JobRequest(
        model="tiny",
        prompts=["a lighthouse at dusk"],
        seeds=list(range(images)),
        width=width,
        height=height,
        steps=STEPS,
    )


def generate(engine: PipelineEngine, request: JobRequest, items=None) -> Recorder:
    rec = Recorder()
    engine.run(request, items if items is not None else request.items(), rec.on_step, rec.on_batch)
    return rec


def budget(batch: int, size: int) -> int:
    """Memory for `batch` images of size x size, and not one more."""
    return batch * size * size


def test_simulated_oom_at_full_batch_finishes_every_image_as_at_batch_1_then_a_small_job_runs_full(engine, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(engine, "max_batch", 1)
        reference = generate(engine, job(LARGE))
    memory = SimulatedMemory(engine, monkeypatch, unet=budget(4, LARGE))

    rec = generate(engine, job(LARGE))
    assert memory.batch_sizes() == [8, 4, 4] and memory.ooms == 1
    assert [len(batch) for batch in rec.batches] == [4, 4]
    assert sorted(rec.images) == sorted(reference.images)
    for key, image in reference.images.items():
        assert int(np.abs(rec.images[key] - image).max()) <= 2, f"image {key} differs from batch 1"

    generate(engine, job(SMALL))
    assert memory.batch_sizes()[3:] == [MAX_BATCH]
    assert engine.max_batch == MAX_BATCH  # what the heartbeat advertises stays as configured


def test_simulated_oom_teaches_the_batch_that_fit_per_size(engine, monkeypatch):
    memory = SimulatedMemory(engine, monkeypatch, unet=budget(4, LARGE))
    generate(engine, job(LARGE))
    assert memory.batch_sizes() == [8, 4, 4] and memory.ooms == 1

    memory.batches.clear()
    generate(engine, job(LARGE))
    assert memory.batch_sizes() == [4, 4] and memory.ooms == 1  # starts at the batch that fit: no second OOM

    memory.batches.clear()
    generate(engine, job((LARGE + 64, LARGE)))  # more pixels: starts no higher than 4, and learns 2
    assert memory.batch_sizes() == [4, 2, 2, 2, 2] and memory.ooms == 2

    memory.batches.clear()
    generate(engine, job(SMALL))
    assert memory.batch_sizes() == [MAX_BATCH]


def test_simulated_oom_in_a_shared_batch_keeps_every_jobs_items(engine, monkeypatch):
    memory = SimulatedMemory(engine, monkeypatch, unet=budget(2, LARGE))
    host, guest = job(LARGE, 3), job(LARGE, 3)
    items = [
        JobItem(job_id=name, **item.model_dump())
        for name, r in (("host", host), ("guest", guest))
        for item in r.items()
    ]

    rec = generate(engine, host, items)
    assert memory.batch_sizes() == [6, 3, 2, 2, 2]
    assert sorted(rec.images) == sorted((item.job_id, item.index) for item in items)
    assert [item for batch in rec.batches for item in batch] == items


def test_simulated_oom_in_the_vae_decode_is_retried_in_tiles_keeping_the_latents(engine, monkeypatch):
    vae = engine.pipeline.vae
    # The tiny VAE tiles images over 512 px; smaller tiles let a LARGE image be decoded in tiles here.
    monkeypatch.setattr(vae, "tile_sample_min_size", SMALL)
    monkeypatch.setattr(vae, "tile_latent_min_size", SMALL // engine.pipeline.vae_scale_factor)
    memory = SimulatedMemory(engine, monkeypatch, vae=budget(1, SMALL))

    rec = generate(engine, job(LARGE, 2))
    assert memory.batch_sizes() == [2] and memory.unet_calls == STEPS  # denoised once: the latents were kept
    assert memory.ooms == 1 and memory.decodes[0] == (2, LARGE, LARGE)
    tiles = memory.decodes[1:]  # one image at a time, tile by tile
    assert len(tiles) > 2 and all(n == 1 and w <= SMALL and h <= SMALL for n, w, h in tiles)
    assert [image.shape for image in rec.images.values()] == [(LARGE, LARGE, 3)] * 2
    assert not vae.use_tiling and not vae.use_slicing  # only for that decode


def test_simulated_oom_at_batch_1_fails_that_job_in_one_line_and_the_next_job_runs(engine, monkeypatch):
    processors = {name: type(p) for name, p in engine.pipeline.unet.attn_processors.items()}
    memory = SimulatedMemory(engine, monkeypatch, unet=budget(1, SMALL))

    rec = Recorder()
    with pytest.raises(OutOfMemory) as err:
        engine.run(job(LARGE, 2), job(LARGE, 2).items(), rec.on_step, rec.on_batch)
    assert str(err.value) == f"out of memory at {LARGE}x{LARGE}, batch 1: try a smaller size"
    assert memory.batch_sizes() == [2, 1] and rec.batches == []

    rec = generate(engine, job(SMALL, 1))
    assert memory.batch_sizes()[2:] == [1] and len(rec.images) == 1
    # SDPA stays on: no attention slicing was turned on
    assert {name: type(p) for name, p in engine.pipeline.unet.attn_processors.items()} == processors


@pytest.mark.parametrize(
    "error, expected",
    [
        (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
        (torch.cuda.OutOfMemoryError("CUDA out of memory."), True),
        (RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB"), True),
        (RuntimeError("MPS backend out of memory (MPS allocated: 8 GiB)"), True),
        (RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: not enough memory"), True),
        (RuntimeError("mat1 and mat2 shapes cannot be multiplied"), False),
        (ValueError("the prompt says: out of memory"), False),
    ],
)
def test_is_out_of_memory_on_simulated_errors(error, expected):
    assert is_out_of_memory(error) is expected


@pytest.mark.processes
def test_simulated_oom_in_a_worker_process_fails_or_shrinks_only_that_job(tmp_path, monkeypatch):
    """A real worker process whose memory limit tests/oom_worker.py simulates, on a Redis of its own."""
    monkeypatch.setattr("seedgrid.client.local.worker_command", lambda python: [python, str(OOM_WORKER)])
    with EmbeddedRedis() as server:
        factory = WorkerFactory(server.url, tmp_path, env={"OOM_TEST_BUDGET": str(budget(4, LARGE))})
        try:
            worker = factory.start(name=f"oom-{uuid.uuid4().hex[:6]}")
            with SeedgridClient(server.url) as client:
                states = []
                for size, images in ((LARGE, MAX_BATCH), (SMALL, MAX_BATCH), (3 * LARGE, 1), (LARGE, MAX_BATCH)):
                    status = client.wait(client.submit(job(size, images)), timeout=120)
                    states.append((status.state, status.images_done))
        finally:
            factory.stop_all()
        tried = re.findall(r"simulated memory: batch (\d+) at (\d+)x\d+", open(worker.log_path).read())
    done = JobState.SUCCEEDED
    assert states == [(done, MAX_BATCH), (done, MAX_BATCH), (JobState.FAILED, 0), (done, MAX_BATCH)]
    assert [(int(batch), int(width)) for batch, width in tried] == [
        *[(8, LARGE), (4, LARGE), (4, LARGE)],  # out of memory at 8: this job at 4
        (8, SMALL),  # the next, smaller job at the full batch
        (1, 3 * LARGE),  # does not fit even alone: that job fails, the worker goes on
        *[(4, LARGE), (4, LARGE)],  # the large size again: at the batch that fit, no second OOM
    ]
    assert f"out of memory at {3 * LARGE}x{3 * LARGE}, batch 1: try a smaller size" in open(worker.log_path).read()
