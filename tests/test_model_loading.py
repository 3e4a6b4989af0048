"""Loading a pipeline by name: the built-in tiny model, local diffusers folders, and what is refused."""

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline

from seedgrid.shared.request import JobRequest
from seedgrid.worker.engine import PipelineEngine
from seedgrid.worker.models.loading import dtype_for, load_pipeline, model_display_name
from seedgrid.worker.models.tiny import build_tiny_pipeline


@pytest.fixture
def no_download(monkeypatch):
    """Any attempt to load real weights (hub or disk) fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"tried to load weights: {args} {kwargs}")

    for name in ("from_pretrained", "from_single_file"):
        monkeypatch.setattr(StableDiffusionPipeline, name, refuse)


@pytest.mark.parametrize("name", ["model.ckpt", "v1-5-pruned.CKPT", "diffusion_pytorch_model.bin", "weights.pt"])
def test_pickle_checkpoints_are_refused_before_any_download(no_download, tmp_path, name):
    for model in (name, str(tmp_path / name)):
        if model != name:
            (tmp_path / name).write_bytes(b"not really a pickle")
        with pytest.raises(ValueError) as err:
            load_pipeline(model, "cpu")
        message = str(err.value)
        assert name in message and "safetensors" in message and "pickle" in message


def test_a_pickle_vae_is_refused(no_download):
    with pytest.raises(ValueError, match="safetensors"):
        load_pipeline("tiny", "cpu", vae="vae-ft-mse-840000-ema-pruned.ckpt")


def test_a_file_that_is_not_safetensors_is_refused(no_download, tmp_path):
    notes = tmp_path / "model.txt"
    notes.write_text("a checkpoint, honest")
    with pytest.raises(ValueError) as err:
        load_pipeline(str(notes), "cpu")
    assert "model.txt" in str(err.value) and ".safetensors" in str(err.value)


def test_tiny_loads_as_float32_on_cpu():
    pipeline = load_pipeline("tiny", "cpu")
    assert pipeline.unet.dtype == torch.float32 and pipeline.vae.dtype == torch.float32
    assert pipeline.device.type == "cpu"


def test_a_local_diffusers_folder_round_trips(tmp_path):
    folder = tmp_path / "tiny-sd"
    build_tiny_pipeline().save_pretrained(folder, safe_serialization=True)
    assert list(folder.rglob("*.safetensors")) and not list(folder.rglob("*.bin"))

    name = model_display_name(str(folder))
    assert name == "tiny-sd"
    loaded = PipelineEngine(load_pipeline(str(folder), "cpu"), name, "cpu")
    builtin = PipelineEngine(load_pipeline("tiny", "cpu"), "tiny", "cpu")
    # The model's own scheduler: save_pretrained writes PNDM's default timestep_spacing ("leading") into the
    # folder's config, so schedulers derived from it (dpm++_2m: "linspace" from the built-in) would differ.
    images = []
    for engine in (loaded, builtin):
        request = JobRequest(
            model=engine.model_name,
            prompts=["a lighthouse"],
            seeds=[42],
            width=64,
            height=64,
            steps=3,
            scheduler="pndm",
        )
        out = []
        engine.run(request, request.items(), lambda *_: None, lambda _batch, imgs: out.extend(imgs))
        images.append(np.asarray(out[0], dtype=np.int16))
    assert int(np.abs(images[0] - images[1]).max()) <= 2


def test_model_display_name(tmp_path):
    assert model_display_name("tiny") == "tiny"
    hub_id = "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert model_display_name(hub_id) == hub_id
    folder = tmp_path / "my-finetune"
    folder.mkdir()
    assert model_display_name(str(folder)) == "my-finetune"
    checkpoint = tmp_path / "dreamshaper_8.safetensors"
    checkpoint.write_bytes(b"")
    assert model_display_name(str(checkpoint)) == "dreamshaper_8"


def test_dtype_for():
    assert dtype_for("cuda") == torch.float16
    assert dtype_for("cuda:1") == torch.float16
    assert dtype_for("cpu") == torch.float32
    assert dtype_for("mps") == torch.float32
