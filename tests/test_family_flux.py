"""The Flux family through the engine, in-process on the CPU with the built-in `tiny-flux` model."""

import argparse

import numpy as np
import pytest
import torch
from diffusers import FluxPipeline
from transformers import CLIPTextModel, T5EncoderModel

from seedgrid.client.cli.request_args import add_request_options, request_from_args
from seedgrid.shared.pngmeta import encode_png, parameters_text, read_png_metadata, request_from_parameters
from seedgrid.shared.request import JobRequest, RequestError
from seedgrid.shared.workers import WorkerInfo
from seedgrid.worker.engine import PipelineEngine
from seedgrid.worker.families import FAMILIES
from seedgrid.worker.models.tiny_flux import build_tiny_flux_pipeline
from seedgrid.worker.preview import FLUX_LATENT_RGB, latents_to_rgb
from tests.family_checks import (
    OLDER_WORKERS_HEARTBEAT,
    check_cancel_at_step_2_stops_the_job,
    check_images_close_to_float32,
    check_seed_gives_the_same_image_alone_and_inside_a_batch,
    check_two_jobs_in_one_batch_give_what_each_gives_alone,
    cpu_engine,
    generate,
    previews_at_every_step,
)

MODEL = "tiny-flux"
SIZE = 64
STEPS = 2


@pytest.fixture(scope="module")
def engine() -> PipelineEngine:
    return cpu_engine(MODEL)


def job(**settings) -> JobRequest:
    base = dict(
        model=MODEL,
        prompts=["a red fox in the snow"],
        seeds=[1],
        width=SIZE,
        height=SIZE,
        steps=STEPS,
        guidance=3.5,
        scheduler="euler",
    )
    return JobRequest(**(base | settings))


def test_tiny_flux_is_a_real_flux_pipeline_with_its_family_defaults(engine):
    pipeline = engine.pipeline
    assert isinstance(pipeline, FluxPipeline)
    assert type(pipeline.text_encoder) is CLIPTextModel and type(pipeline.text_encoder_2) is T5EncoderModel
    assert pipeline.vae.config.latent_channels == 16 and pipeline.transformer.config.guidance_embeds
    assert engine.family is FAMILIES["flux"] and engine.schedulers == ["euler"]
    assert engine.family_info() == {
        "family": "flux",
        "default_width": 1024,
        "default_height": 1024,
        "default_steps": 28,
        "default_guidance": 3.5,
        "negative_prompt": False,
        "size_multiple": 16,
    }
    schnell = PipelineEngine(build_tiny_flux_pipeline(guidance_embeds=False), "tiny-schnell", "cpu")
    assert (schnell.family_info()["default_steps"], schnell.family_info()["default_guidance"]) == (4, 0.0)
    again = build_tiny_flux_pipeline()
    params = zip(pipeline.transformer.parameters(), again.transformer.parameters(), strict=True)
    assert all(torch.equal(a, b) for a, b in params)


def test_noise_is_drawn_per_image_unpacked_and_packed_as_flux_does(engine):
    request = job(seeds=[3, 7], width=96)
    ours = engine.initial_noise(request, [torch.Generator().manual_seed(s) for s in request.seeds])
    theirs, _ = engine.pipeline.prepare_latents(
        2, 16, SIZE, 96, torch.float32, "cpu", [torch.Generator().manual_seed(s) for s in request.seeds]
    )
    assert ours.shape == (2, (SIZE // 16) * (96 // 16), 64) and torch.equal(ours, theirs)


def test_seed_gives_the_same_image_alone_and_inside_a_batch(engine):
    check_seed_gives_the_same_image_alone_and_inside_a_batch(engine, job, SIZE)


def test_guidance_is_distilled_one_transformer_pass_per_step_with_the_requests_guidance(engine):
    seen = []

    def record(_module, _args, kwargs):
        seen.append((kwargs["hidden_states"].shape[0], kwargs["guidance"].tolist()))

    hook = engine.pipeline.transformer.register_forward_pre_hook(record, with_kwargs=True)
    try:
        generate(engine, job(seeds=[1, 2], guidance=5.5))
    finally:
        hook.remove()
    assert seen == [(2, [5.5, 5.5])] * STEPS  # no unconditional pass: the batch is not doubled


def test_items_of_two_jobs_in_one_batch_give_what_each_gives_alone(engine):
    first = job(prompts=["a red fox"], seeds=[11])
    second = job(prompts=["a blue bird over the sea"], seeds=[5])
    check_two_jobs_in_one_batch_give_what_each_gives_alone(engine, first, second)


def test_cancel_from_the_step_callback_stops_the_job(engine):
    check_cancel_at_step_2_stops_the_job(engine, job(seeds=[1, 2], steps=5))


def test_previews_unpack_the_latents_and_use_the_flux_projection(engine, monkeypatch):
    rec, projections = previews_at_every_step(engine, job(seeds=[1, 2], width=96, steps=3), monkeypatch)
    assert sorted(rec.previews) == [1, 2]  # none at the last step
    assert {image.size for images in rec.previews.values() for image in images} == {(12, 8)}
    assert projections and all(p is FLUX_LATENT_RGB for p in projections)
    grey = np.asarray(latents_to_rgb(torch.zeros((1, 16, 2, 2)), FLUX_LATENT_RGB)[0])
    assert tuple(grey[0, 0]) == (123, 118, 117)  # a zero latent is Flux's bias: round((1 + bias) * 127.5)


@pytest.mark.parametrize(
    ("settings", "field", "words"),
    [
        ({"negative_prompt": "blurry"}, "negative_prompt", "negative_prompt: Flux models take no negative prompt"),
        ({"width": 72}, "width", "72 is not a multiple of 16"),
        ({"height": 88}, "height", "a multiple of 16 from 64 to 2048 for Flux models"),
        ({"scheduler": "dpm++_2m"}, "scheduler", "allowed: one of euler"),
    ],
)
def test_the_worker_refuses_what_flux_cannot_take_naming_the_field(engine, settings, field, words):
    request = job(**settings)
    with pytest.raises(RequestError) as refused:
        engine.check(request)
    assert refused.value.field == field and words in str(refused.value)
    with pytest.raises(RequestError):
        generate(engine, request)


def test_png_parameters_write_the_distilled_guidance_as_forge_does(engine):
    request = job(guidance=3.5, seeds=[4])
    rec = generate(engine, request)
    [item] = request.items()
    png = encode_png(rec.images[0], request, item, family="flux")
    meta = read_png_metadata(png)
    assert meta.request == request and meta.item == item
    assert "Sampler: Euler, CFG scale: 1, Distilled CFG Scale: 3.5, Seed: 4, Size: 64x64" in meta.parameters
    back = request_from_parameters(meta.parameters)
    assert (back.guidance, back.steps, back.scheduler, back.model) == (3.5, STEPS, "euler", MODEL)
    sd = job(model="tiny", scheduler="dpm++_2m", guidance=7.5)
    assert "CFG scale: 7.5, Seed:" in parameters_text(sd, sd.items()[0]) and "Distilled" not in parameters_text(
        sd, sd.items()[0]
    )


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_on_the_cpu_gives_finite_images_close_to_float32(engine, dtype):
    half = cpu_engine(MODEL, dtype=dtype)
    assert half.pipeline.transformer.dtype == dtype and half.dtype == dtype
    # Flux's VAE asks for float32 in float16 (force_upcast); bfloat16 has float32's range.
    assert half.pipeline.vae.dtype == (torch.float32 if dtype == torch.float16 else dtype)
    check_images_close_to_float32(half, engine, job(seeds=[1, 2]))


def cli_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_request_options(parser)
    return parser.parse_args(["a fox", "--model", MODEL, *argv])


def test_cli_options_left_out_take_the_served_models_defaults(engine):
    info = WorkerInfo(
        name="w", host="h", pid=1, model=MODEL, device="cpu", schedulers=engine.schedulers, max_batch=8,
        **engine.family_info(),
    )  # fmt: skip
    served = request_from_args(cli_args(), info)
    assert (served.width, served.height, served.steps, served.guidance, served.scheduler) == (
        1024, 1024, 28, 3.5, "euler",
    )  # fmt: skip
    given = request_from_args(cli_args("--width", "512", "--steps", "4", "--guidance", "2"), info)
    assert (given.width, given.height, given.steps, given.guidance) == (512, 1024, 4, 2.0)
    unserved = request_from_args(cli_args())  # no worker: the contract's (SD's) defaults
    assert (unserved.width, unserved.steps, unserved.guidance, unserved.scheduler) == (512, 20, 7.5, "dpm++_2m")


def test_heartbeats_of_older_workers_parse_with_sd_rules():
    info = WorkerInfo.model_validate(OLDER_WORKERS_HEARTBEAT)
    assert (info.negative_prompt, info.size_multiple, info.default_steps, info.default_guidance) == (True, 8, 20, 7.5)
