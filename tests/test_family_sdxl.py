"""The SDXL family through the engine, in-process on the CPU with the built-in `tiny-xl` model."""

import io
import json

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL, StableDiffusionXLPipeline
from PIL import Image
from transformers import CLIPTextModel, CLIPTextModelWithProjection

from seedgrid.shared.pngmeta import encode_png, read_png_metadata
from seedgrid.shared.request import JobRequest
from seedgrid.shared.workers import WorkerInfo
from seedgrid.worker.engine import PipelineEngine
from seedgrid.worker.models.tiny_xl import build_tiny_xl_pipeline
from seedgrid.worker.preview import SDXL_LATENT_RGB, latents_to_rgb
from tests.family_checks import (
    OLDER_WORKERS_HEARTBEAT,
    check_cancel_at_step_2_stops_the_job,
    check_images_close_to_float32,
    check_seed_gives_the_same_image_alone_and_inside_a_batch,
    check_two_jobs_in_one_batch_give_what_each_gives_alone,
    cpu_engine,
    generate,
    mean_diff,
    pixels,
    previews_at_every_step,
)

MODEL = "tiny-xl"
SIZE = 64
STEPS = 3


@pytest.fixture(scope="module")
def engine() -> PipelineEngine:
    return cpu_engine(MODEL)


def job(**settings) -> JobRequest:
    base = dict(model=MODEL, prompts=["a red fox in the snow"], seeds=[1], width=SIZE, height=SIZE, steps=STEPS)
    return JobRequest(**(base | settings))


def test_tiny_xl_is_a_real_sdxl_pipeline_built_the_same_every_time(engine):
    pipeline = engine.pipeline
    assert isinstance(pipeline, StableDiffusionXLPipeline)
    assert type(pipeline.text_encoder) is CLIPTextModel
    assert type(pipeline.text_encoder_2) is CLIPTextModelWithProjection
    assert pipeline.unet.config.addition_embed_type == "text_time"
    assert engine.family.name == "sdxl" and engine.family.default_size == (1024, 1024)
    assert "dpm++_2m" in engine.schedulers and "euler" in engine.schedulers
    again = build_tiny_xl_pipeline()
    assert all(torch.equal(a, b) for a, b in zip(pipeline.unet.parameters(), again.unet.parameters(), strict=True))


def test_seed_gives_the_same_image_alone_and_inside_a_batch(engine):
    check_seed_gives_the_same_image_alone_and_inside_a_batch(engine, job, SIZE)


def test_any_size_that_is_a_multiple_of_8_is_served_with_size_conditioning(engine):
    seen = []

    def record_time_ids(_module, _args, kwargs):
        seen.append(kwargs["added_cond_kwargs"]["time_ids"][0].tolist())

    hook = engine.pipeline.unet.register_forward_pre_hook(record_time_ids, with_kwargs=True)
    try:
        rec = generate(engine, job(width=88, height=72, steps=2))
    finally:
        hook.remove()
    assert pixels(rec)[0].shape == (72, 88, 3)
    assert seen and all(ids == [72, 88, 0, 0, 72, 88] for ids in seen)  # original size, crop, target size


def test_items_of_two_jobs_in_one_batch_give_what_each_gives_alone(engine):
    plain = job(prompts=["a red fox"], seeds=[11])
    negative = job(prompts=["a blue bird"], seeds=[5], negative_prompt="blurry, dark")
    together = check_two_jobs_in_one_batch_give_what_each_gives_alone(engine, plain, negative)
    without = pixels(generate(engine, job(prompts=["a blue bird"], seeds=[5])))[0]
    assert mean_diff(together[1], without) > 1.0, "the negative prompt must change the image"


def test_cancel_from_the_step_callback_stops_the_job(engine):
    check_cancel_at_step_2_stops_the_job(engine, job(seeds=[1, 2], steps=6))


def test_previews_use_the_sdxl_projection_one_per_item_at_latent_size(engine, monkeypatch):
    rec, projections = previews_at_every_step(engine, job(seeds=[1, 2], width=96, height=SIZE, steps=4), monkeypatch)
    assert sorted(rec.previews) == [1, 2, 3]  # none at the last step
    assert {image.size for images in rec.previews.values() for image in images} == {(12, 8)}
    assert projections and all(p is SDXL_LATENT_RGB for p in projections)
    grey = np.asarray(latents_to_rgb(torch.zeros((1, 4, 2, 2)), SDXL_LATENT_RGB)[0])
    assert tuple(grey[0, 0]) == (141, 125, 127)  # a zero latent is SDXL's bias: round((1 + bias) * 127.5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_on_the_cpu_gives_finite_images_close_to_float32(engine, dtype):
    half = cpu_engine(MODEL, dtype=dtype)
    assert half.pipeline.unet.dtype == dtype and half.dtype == dtype
    # SDXL's VAE overflows in float16, so it runs in float32; bfloat16 has float32's range.
    assert half.pipeline.vae.dtype == (torch.float32 if dtype == torch.float16 else dtype)
    check_images_close_to_float32(half, engine, job(seeds=[1, 2]))


def save_vae(vae: AutoencoderKL, folder, force_upcast: bool):
    vae = AutoencoderKL.from_config({**vae.config, "force_upcast": force_upcast})
    vae.load_state_dict(build_tiny_xl_pipeline().vae.state_dict())
    vae.save_pretrained(folder, safe_serialization=True)
    return str(folder)


def test_a_fixed_vae_given_with_vae_stays_in_float16_and_an_overflow_is_decoded_again_in_float32(
    engine, tmp_path, caplog
):
    fixed = save_vae(engine.pipeline.vae, tmp_path / "vae-fp16-fix", force_upcast=False)
    half = cpu_engine(MODEL, vae=fixed, dtype=torch.float16)
    assert half.pipeline.vae.dtype == torch.float16
    request = job(seeds=[4])
    assert pixels(generate(half, request))[0].max() > 0
    with torch.no_grad():
        half.pipeline.vae.decoder.conv_in.weight.mul_(1e5)  # past float16's 65504: NaN; fine in float32
    rec = generate(half, request)
    assert "float32" in caplog.text
    assert pixels(rec)[0].max() > 0
    with torch.no_grad():
        half.pipeline.vae.decoder.conv_out.weight[0, 0, 0, 0] = float("nan")
        half._vae_float32 = None  # the float32 copy is made again from the broken VAE
    assert generate(half, request).images == [None]  # NaN in float32 as well


def test_png_metadata_names_the_model_and_size(engine):
    request = job(width=72, height=SIZE, negative_prompt="blurry")
    got = []
    engine.run(
        request, request.items(), lambda *_: None, lambda batch, images: got.extend(zip(batch, images, strict=True))
    )
    [(item, image)] = got
    png = encode_png(image, request, item)
    meta = read_png_metadata(png)
    assert meta.request == request and meta.item == item
    assert "Negative prompt: blurry" in meta.parameters
    assert f"Seed: 1, Size: 72x{SIZE}, Model: {MODEL}" in meta.parameters
    assert Image.open(io.BytesIO(png)).size == (72, SIZE)


def test_heartbeats_of_older_workers_without_a_family_still_parse():
    info = WorkerInfo.model_validate_json(json.dumps(OLDER_WORKERS_HEARTBEAT))
    assert (info.family, info.default_width, info.default_height) == ("sd", 512, 512)
