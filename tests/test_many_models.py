"""One `seedgrid worker --models DIR --keep 1 --loras DIR` serves an SD and an SDXL model (the tiny ones, saved as
diffusers folders) and a LoRA for each through a real Redis and Celery: interleaved jobs run grouped by model,
within the documented bound; LoRAs change images the same way by CLI option and by prompt tag."""

import io
import time

import numpy as np
import pytest
from PIL import Image

from seedgrid.client.api import SeedgridClient
from seedgrid.shared.embedded_redis import EmbeddedRedis
from seedgrid.shared.job import JobState
from seedgrid.shared.pngmeta import read_png_metadata
from seedgrid.shared.request import LoraRef, RequestError
from seedgrid.shared.workers import HEARTBEAT_SECONDS, WorkerInfo
from tests.conftest import WorkerFactory
from tests.helpers import max_pixel_diff, pixels
from tests.test_cli import seedgrid


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """(models, loras): the tiny SD and SDXL models as diffusers folders, and a LoRA made for each."""
    from seedgrid.worker.models.tiny import build_tiny_pipeline
    from seedgrid.worker.models.tiny_xl import build_tiny_xl_pipeline
    from tests.tiny_lora import make_tiny_lora

    models, loras = tmp_path_factory.mktemp("models"), tmp_path_factory.mktemp("loras")
    sd, xl = build_tiny_pipeline(), build_tiny_xl_pipeline()
    sd.save_pretrained(models / "mm-sd")
    xl.save_pretrained(models / "mm-xl")
    (models / "notes.txt").write_text("not a model")
    (models / "broken.safetensors").write_bytes(b"not a safetensors file")  # skipped with a warning
    make_tiny_lora(sd, loras / "sd-detail.safetensors", seed=1, scale=0.5)
    make_tiny_lora(xl, loras / "xl-detail.safetensors", seed=2, scale=0.5)
    (loras / "secret.ckpt").write_bytes(b"not allowed")
    return models, loras


@pytest.fixture(scope="module")
def two_models(folders, tmp_path_factory):
    """A client and the name of one worker serving both models with --keep 1 and the LoRAs, on its own Redis."""
    models, loras = folders
    with EmbeddedRedis() as redis_server:
        factory = WorkerFactory(redis_server.url, tmp_path_factory.mktemp("logs"))
        try:
            args = ["--models", str(models), "--keep", "1", "--loras", str(loras)]
            worker = factory.start(name="two-models", model="", extra_args=args)
            with SeedgridClient(redis_server.url) as client:
                yield client, worker.name
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


PROMPT = "a lighthouse"


def loaded_model(client: SeedgridClient, name: str, timeout: float = 10.0) -> str:
    """The model the worker has loaded, once a heartbeat shows one (one sent while a model loads shows none)."""
    deadline = time.monotonic() + timeout
    while True:
        [info] = [w for w in client.workers() if w.name == name]
        loaded = [offer.name for offer in info.models if offer.loaded]
        if len(loaded) == 1 or time.monotonic() > deadline:
            assert len(loaded) == 1, info.models
            return loaded[0]
        time.sleep(0.2)


def job(model: str, seed: int, tag: str = "") -> dict:
    """A one-image job as the library takes it; `tag`: <lora:...> tags after the prompt."""
    return {"model": model, "prompts": [f"{PROMPT}, {model}{tag}"], "seeds": [seed], "width": 64, "height": 64,
            "steps": 2}  # fmt: skip


def png_of(client: SeedgridClient, job_id: str) -> bytes:
    status = client.wait(job_id, timeout=120)
    assert status.state == JobState.SUCCEEDED, status.error
    [record] = client.images(job_id)
    return client.image_png(job_id, record.index)


@pytest.mark.processes
def test_one_worker_serves_two_models_from_a_folder_and_groups_interleaved_jobs_by_model(two_models):
    client, name = two_models
    [info] = [w for w in client.workers() if w.name == name]
    assert [o.name for o in info.models] == ["mm-sd", "mm-xl"] and [o.family for o in info.models] == ["sd", "sdxl"]
    assert sorted(client.models()) == ["mm-sd", "mm-xl"] and info.loras == ["sd-detail", "xl-detail"]

    # A first job: the worker is taking jobs (its heartbeat comes before Celery consumes), with mm-sd loaded.
    assert client.wait(client.submit(job("mm-sd", 99)), timeout=120).state == JobState.SUCCEEDED
    before = heartbeat_after(client, name, jobs_done=info.jobs_done + 1)
    assert [o.name for o in before.models if o.loaded] == ["mm-sd"]

    # Alternating models: the first (mm-xl) is taken at once and loads mm-xl; the rest wait in their queues.
    jobs = [client.submit(job(["mm-xl", "mm-sd"][seed % 2], seed)) for seed in range(8)]
    statuses = [client.wait(job_id, timeout=240) for job_id in jobs]
    assert all(s.state == JobState.SUCCEEDED for s in statuses), [s.error for s in statuses]

    # By start time: mm-xl's queued jobs all ran before the switch back (8 turns at most: SEEDGRID_MODEL_STREAK).
    order = [s.request.model for s in sorted(statuses, key=lambda s: s.started_at)]
    assert order == ["mm-xl"] * 4 + ["mm-sd"] * 4, order
    after = heartbeat_after(client, name, jobs_done=before.jobs_done + 8)
    assert after.model_loads - before.model_loads == 2  # mm-xl, then mm-sd again: not one per job

    for status in statuses:  # each image from its own model's pipeline, with its metadata
        [record] = client.images(status.job_id)
        png = client.image_png(status.job_id, record.index)
        assert read_png_metadata(png).request == status.request
        assert Image.open(io.BytesIO(png)).size == (64, 64)


@pytest.mark.processes
def test_a_lora_by_cli_option_and_by_prompt_tag_changes_the_image_the_same_way(two_models, tmp_path):
    client, _ = two_models
    plain = png_of(client, client.submit(job("mm-sd", 5)))
    # The SDXL model with its own LoRA in between: the next job's LoRA must not depend on what ran before.
    png_of(client, client.submit(job("mm-xl", 5, tag=" <lora:xl-detail:1>")))
    tagged = png_of(client, client.submit(job("mm-sd", 5, tag=" <lora:sd-detail:0.8>")))
    size = ["--steps", "2", "--width", "64", "--height", "64"]
    cli = seedgrid("generate", f"{PROMPT}, mm-sd", "--model", "mm-sd", "--lora", "sd-detail:0.8", "--seeds", "5",
                   *size, "--out", str(tmp_path), redis_url=client.redis_url, timeout=120)  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    [from_cli] = [path.read_bytes() for path in tmp_path.glob("*.png")]

    assert np.abs(pixels(tagged) - pixels(plain)).mean() > 2  # the LoRA changed the image
    assert max_pixel_diff(tagged, from_cli) <= 1  # the same LoRA job by either way: the same image
    meta = read_png_metadata(tagged)
    assert meta.request.loras == [LoraRef(name="sd-detail", weight=0.8)] and meta.request.prompts == [
        f"{PROMPT}, mm-sd"
    ]
    assert "<lora:sd-detail:0.8>" in meta.parameters and 'Lora hashes: "sd-detail: ' in meta.parameters
    assert list(meta.lora_hashes) == ["sd-detail"]


@pytest.mark.processes
def test_requests_the_workers_cannot_serve_are_refused_before_queueing_naming_the_field(two_models):
    client, _ = two_models
    with pytest.raises(RequestError, match=r"^model: no online worker serves 'tiny' \(online: mm-sd, mm-xl\)"):
        client.submit(job("tiny", 0))
    with pytest.raises(RequestError, match=r"^loras: 'secret' is not allowed by a worker of mm-sd \(allowed: one of "):
        client.submit(job("mm-sd", 0, tag=" <lora:secret:1>"))
    queued = [lora.name for status in client.jobs() if status.request for lora in status.request.loras]
    assert "secret" not in queued


@pytest.mark.processes
def test_a_lora_made_for_another_model_fails_its_job_in_one_line_and_the_worker_goes_on(two_models):
    client, _ = two_models
    status = client.wait(client.submit(job("mm-xl", 1, tag=" <lora:sd-detail:1>")), timeout=120)
    assert status.state == JobState.FAILED
    assert status.error.startswith("loras: sd-detail does not fit") and "\n" not in status.error
    png_of(client, client.submit(job("mm-xl", 1, tag=" <lora:xl-detail:1>")))  # the worker still serves


@pytest.mark.processes
def test_models_and_workers_commands_list_what_the_worker_serves_and_has_loaded(two_models):
    client, name = two_models
    time.sleep(HEARTBEAT_SECONDS + 0.5)  # a heartbeat sent after the last test's jobs
    loaded = loaded_model(client, name)  # no job runs now: what the next heartbeats say too
    models = seedgrid("models", redis_url=client.redis_url, timeout=60)
    assert models.returncode == 0, models.stderr
    rows = {line.split()[0]: line.split() for line in models.stdout.splitlines()[1:] if line.startswith("mm-")}
    assert set(rows) == {"mm-sd", "mm-xl"} and models.stdout.splitlines()[1].startswith(loaded)  # loaded first
    assert rows["mm-sd"][1] == "sd" and rows["mm-xl"][1] == "sdxl" and rows[loaded][2] == name
    assert "LoRAs: sd-detail, xl-detail" in models.stdout
    workers = seedgrid("workers", redis_url=client.redis_url, timeout=60)
    assert f"{loaded}*" in workers.stdout and "memory: full: not a CUDA device" in workers.stdout
    assert "LoRAs: sd-detail, xl-detail" in workers.stdout
