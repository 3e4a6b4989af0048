"""A model's family, found when it loads: diffusers folders by model_index.json, single files by their keys."""

import hashlib
import json

import numpy as np
import pytest
import torch
from diffusers import FluxPipeline, StableDiffusionPipeline, StableDiffusionXLPipeline
from safetensors import safe_open

from seedgrid.shared.request import JobRequest
from seedgrid.worker.engine import PipelineEngine
from seedgrid.worker.models.detect import detect_family, family_from_keys
from seedgrid.worker.models.loading import load_pipeline, model_display_name
from seedgrid.worker.models.tiny import build_tiny_pipeline
from seedgrid.worker.models.tiny_flux import build_tiny_flux_pipeline
from seedgrid.worker.models.tiny_xl import build_tiny_xl_pipeline
from seedgrid.worker.runtime import WorkerRuntime
from tests.sdxl_checkpoint import save_original_layout

REQUEST = JobRequest(model="tiny-xl", prompts=["a lighthouse at dusk"], seeds=[3, 9], width=64, height=64, steps=2)
FLUX_REQUEST = REQUEST.model_copy(update={"model": "tiny-flux", "scheduler": "euler", "guidance": 3.5})


@pytest.fixture(scope="module")
def xl_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "my-sdxl-finetune"
    build_tiny_xl_pipeline().save_pretrained(folder, safe_serialization=True)
    return folder


def images(pipeline, name: str = "tiny-xl", request: JobRequest = REQUEST) -> list[np.ndarray]:
    engine = PipelineEngine(pipeline, name, "cpu")
    request = request.model_copy(update={"model": name})
    out: list[np.ndarray] = []
    engine.run(request, request.items(), lambda *_: None, lambda b, imgs: out.extend(np.asarray(i) for i in imgs))
    return [image.astype(np.int16) for image in out]


def test_diffusers_folders_by_their_model_index(xl_folder, tmp_path):
    assert detect_family(str(xl_folder)) == "sdxl"
    sd_folder = tmp_path / "sd"
    build_tiny_pipeline().save_pretrained(sd_folder, safe_serialization=True)
    assert detect_family(str(sd_folder)) == "sd"
    assert isinstance(load_pipeline(str(sd_folder), "cpu"), StableDiffusionPipeline)
    other = tmp_path / "other"
    other.mkdir()
    (other / "model_index.json").write_text(json.dumps({"_class_name": "SomeVideoPipeline"}))
    with pytest.raises(ValueError, match="SomeVideoPipeline"):
        load_pipeline(str(other), "cpu")


def test_an_sdxl_folder_loads_as_sdxl_and_makes_the_built_in_images(xl_folder):
    pipeline = load_pipeline(str(xl_folder), "cpu")
    assert isinstance(pipeline, StableDiffusionXLPipeline)
    name = model_display_name(str(xl_folder))
    assert name == "my-sdxl-finetune"
    loaded, built_in = images(pipeline, name), images(load_pipeline("tiny-xl", "cpu"))
    assert all(np.abs(a - b).max() <= 2 for a, b in zip(loaded, built_in, strict=True))


def test_single_file_keys_tell_the_family():
    sd = ["cond_stage_model.transformer.text_model.final_layer_norm.weight", "model.diffusion_model.out.2.bias"]
    sd2 = ["cond_stage_model.model.transformer.resblocks.0.ln_1.weight", "model.diffusion_model.out.2.bias"]
    xl = ["conditioner.embedders.0.transformer.text_model.final_layer_norm.weight"]
    xl += ["conditioner.embedders.1.model.ln_final.weight", "model.diffusion_model.out.2.bias"]
    assert family_from_keys(sd, "a") == family_from_keys(sd2, "b") == "sd"
    assert family_from_keys(xl, "c") == "sdxl"
    with pytest.raises(ValueError, match="refiner"):
        family_from_keys(["conditioner.embedders.0.model.ln_final.weight"], "refiner.safetensors")
    with pytest.raises(ValueError, match="video.safetensors"):
        family_from_keys(["blocks.0.self_attn.q.weight"], "video.safetensors")


def test_an_sdxl_single_file_in_the_original_layout_loads_with_a_local_config(xl_folder, tmp_path):
    pipeline = build_tiny_xl_pipeline()
    with torch.no_grad():
        pipeline.unet.conv_out.bias.add_(0.05)  # so these weights can only have come from the file
    checkpoint = tmp_path / "my_sdxl_checkpoint.safetensors"
    save_original_layout(pipeline, checkpoint)
    with safe_open(str(checkpoint), framework="pt") as f:
        keys = set(f.keys())
    assert "model.diffusion_model.out.2.bias" in keys and "conditioner.embedders.1.model.text_projection" in keys
    assert not any(key.startswith(("unet.", "text_encoder")) for key in keys)
    assert detect_family(str(checkpoint)) == "sdxl"

    # As `seedgrid worker --model FILE --config DIR` loads it (the Redis URL is not used before jobs come).
    runtime = WorkerRuntime.load("redis://127.0.0.1:1/0", str(checkpoint), "cpu", config=str(xl_folder))
    loaded = runtime.engine.engine_for("my_sdxl_checkpoint").pipeline  # type: ignore[attr-defined]
    assert isinstance(loaded, StableDiffusionXLPipeline) and runtime.info().family == "sdxl"
    for part in ("unet", "vae", "text_encoder", "text_encoder_2"):
        want, got = getattr(pipeline, part).state_dict(), getattr(loaded, part).state_dict()
        assert want.keys() == got.keys(), part
        assert all(torch.equal(want[k], got[k]) for k in want), f"{part} differs after the round trip"
    name = model_display_name(str(checkpoint))
    assert name == "my_sdxl_checkpoint"
    # A1111's `Model hash` of the file: the first 10 hex digits of its sha256, in the heartbeat and the PNGs.
    assert runtime.model_hash(name) == hashlib.sha256(checkpoint.read_bytes()).hexdigest()[:10]
    assert runtime.info().models[0].model_hash == runtime.model_hash(name)
    assert all(np.abs(a - b).max() <= 2 for a, b in zip(images(loaded, name), images(pipeline), strict=True))


def test_flux_single_file_keys_tell_the_family_in_both_layouts():
    bfl = ["double_blocks.0.img_attn.norm.key_norm.scale", "single_blocks.0.linear1.weight", "img_in.weight"]
    comfy = ["model.diffusion_model." + key for key in bfl] + ["text_encoders.t5xxl.transformer.shared.weight"]
    assert family_from_keys(bfl, "flux1-dev.safetensors") == family_from_keys(comfy, "flux1-schnell-fp8") == "flux"


def test_a_flux_folder_loads_as_flux_and_makes_the_built_in_images(tmp_path):
    folder = tmp_path / "my-flux-finetune"
    build_tiny_flux_pipeline().save_pretrained(folder, safe_serialization=True)
    assert detect_family(str(folder)) == "flux"
    pipeline = load_pipeline(str(folder), "cpu")
    assert isinstance(pipeline, FluxPipeline)
    name = model_display_name(str(folder))
    request = FLUX_REQUEST.model_copy(update={"model": name})
    loaded = images(pipeline, name, request)
    built_in = images(load_pipeline("tiny-flux", "cpu"), "tiny-flux", FLUX_REQUEST)
    assert all(np.abs(a - b).max() <= 2 for a, b in zip(loaded, built_in, strict=True))


def test_a_flux_model_not_loaded_yet_offers_schnells_or_devs_defaults_as_it_is(tmp_path):
    """Before: every Flux model not loaded yet offered dev's 28 steps and guidance 3.5, a schnell one too, until
    its first job had loaded it (then 4 and 0)."""
    from safetensors.torch import save_file

    from seedgrid.worker.model_sources import source_of

    for name, embeds in (("my-schnell", False), ("my-dev", True)):
        build_tiny_flux_pipeline(guidance_embeds=embeds).save_pretrained(tmp_path / name, safe_serialization=True)
    blocks = {"double_blocks.0.img_attn.norm.key_norm.scale": torch.zeros(1), "img_in.weight": torch.zeros(1)}
    save_file(blocks, tmp_path / "flux1-schnell-fp8.safetensors")
    save_file({**blocks, "guidance_in.in_layer.weight": torch.zeros(1)}, tmp_path / "flux1-dev-fp8.safetensors")
    offers = {
        spec: source_of(str(tmp_path / spec)).offer
        for spec in ("my-schnell", "my-dev", "flux1-schnell-fp8.safetensors", "flux1-dev-fp8.safetensors")
    }
    got = {spec: (o.family, o.default_steps, o.default_guidance, o.loaded) for spec, o in offers.items()}
    assert got == {
        "my-schnell": ("flux", 4, 0.0, False),
        "my-dev": ("flux", 28, 3.5, False),
        "flux1-schnell-fp8.safetensors": ("flux", 4, 0.0, False),
        "flux1-dev-fp8.safetensors": ("flux", 28, 3.5, False),
    }
