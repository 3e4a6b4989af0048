"""The optional speed changes keep images equal to the plain engine's (real tiny pipeline on the CPU)."""

import numpy as np
import pytest
import torch

from seedgrid.shared.request import JobRequest
from seedgrid.worker.engine import PipelineEngine
from seedgrid.worker.models.loading import load_pipeline
from seedgrid.worker.speedups import apply_speedups, parse_speedups

REQUEST = JobRequest(
    prompts=["a red fox", "an old oak"], seeds=[1, 2], negative_prompt="blurry", width=128, height=128, steps=6
)


def images(engine: PipelineEngine, request: JobRequest = REQUEST) -> dict[int, np.ndarray]:
    out = {}
    engine.run(
        request,
        request.items(),
        lambda *_: None,
        lambda batch, imgs: out.update(
            {i.index: np.asarray(im, dtype=np.int16) for i, im in zip(batch, imgs, strict=True)}
        ),
    )
    return out


def engine_with(speedups: tuple[str, ...], **options) -> PipelineEngine:
    pipeline = load_pipeline("tiny", "cpu")
    apply_speedups(pipeline, speedups, "cpu", **options)
    return PipelineEngine(pipeline, "tiny", "cpu")


@pytest.fixture(scope="module")
def plain() -> dict[int, np.ndarray]:
    return images(PipelineEngine(load_pipeline("tiny", "cpu"), "tiny", "cpu"))


def test_parse_speedups_names_the_option_and_the_known_values():
    assert parse_speedups(" compile, fuse_qkv ,compile") == ("compile", "fuse_qkv")
    assert parse_speedups("") == parse_speedups(None) == ()
    with pytest.raises(ValueError, match=r"--speedups: unknown turbo \(known: channels_last, fuse_qkv, compile\)"):
        parse_speedups("channels_last,turbo")


def test_channels_last_and_fused_qkv_give_the_plain_engines_images(plain):
    made = images(engine_with(("channels_last", "fuse_qkv")))
    assert made.keys() == plain.keys()
    assert max(int(np.abs(made[i] - plain[i]).max()) for i in plain) <= 2


def test_compile_traces_the_whole_unet_in_one_graph_aot_eager_backend_not_inductor(plain):
    """fullgraph=True fails on any graph break. Inductor itself takes minutes per shape on a CPU, so the
    cheaper aot_eager backend stands in for it here; the GPU benchmark runs the real one."""
    engine = engine_with(("compile",), compile_backend="aot_eager")
    assert type(engine.pipeline.unet).__name__ == "OptimizedModule"
    assert engine.warm_up(width=128, height=128, batches=[4]) > 0
    made = images(engine)
    assert max(int(np.abs(made[i] - plain[i]).max()) for i in plain) <= 2


def test_the_worker_refuses_an_unknown_speedup_before_loading_anything(capsys):
    from seedgrid.worker.cli import main

    assert main(["--speedups", "compile,turbo", "--redis", "redis://127.0.0.1:1/0"]) == 2
    assert (
        "seedgrid worker: --speedups: unknown turbo (known: channels_last, fuse_qkv, compile)"
        in capsys.readouterr().err
    )


def family_images(model: str, speedups: tuple[str, ...]):
    pipeline = load_pipeline(model, "cpu")
    apply_speedups(pipeline, speedups, "cpu")
    changes = {"model": model, "negative_prompt": "", "width": 64, "height": 64, "steps": 3, "scheduler": "euler"}
    request = REQUEST.model_copy(update=changes)
    return pipeline, images(PipelineEngine(pipeline, model, "cpu"), request)


def test_channels_last_and_fused_qkv_change_each_familys_denoiser_and_keep_its_images():
    for model, denoiser_name in [("tiny-flux", "transformer"), ("tiny-xl", "unet")]:
        _, plain_images = family_images(model, ())
        pipeline, made = family_images(model, ("channels_last", "fuse_qkv"))
        denoiser = getattr(pipeline, denoiser_name)
        assert any(getattr(module, "fused_projections", False) for module in denoiser.modules()), model
        assert pipeline.vae.encoder.conv_in.weight.is_contiguous(memory_format=torch.channels_last), model
        assert max(int(np.abs(made[i] - plain_images[i]).max()) for i in plain_images) <= 2, model


def test_compile_takes_flux_s_transformer_and_a_speedup_the_family_lacks_is_refused(monkeypatch):
    from seedgrid.worker.families.flux import FLUX

    given = []
    monkeypatch.setattr(torch, "compile", lambda module, **options: given.append(module) or torch.nn.Identity())
    pipeline = load_pipeline("tiny-flux", "cpu")
    transformer = pipeline.transformer
    apply_speedups(pipeline, ("compile",), "cpu")  # accepted; torch.compile stands in, nothing is compiled
    assert given == [transformer] and isinstance(pipeline.transformer, torch.nn.Identity)
    monkeypatch.setattr(FLUX, "speedups", ("channels_last",))
    with pytest.raises(ValueError, match=r"^--speedups: fuse_qkv, compile not available for Flux models "
                                         r"\(available: channels_last\)$"):  # fmt: skip
        apply_speedups(load_pipeline("tiny-flux", "cpu"), ("fuse_qkv", "compile"), "cpu")
