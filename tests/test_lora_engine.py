"""LoRAs on the tiny pipelines, in-process on the CPU: the worker's allow-list and the adapters it applies."""

import logging
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from seedgrid.worker.families import family_of
from seedgrid.worker.loras import LoraApplier, LoraLibrary
from seedgrid.worker.models.tiny import TEXT_WIDTH, build_tiny_pipeline
from seedgrid.worker.models.tiny_flux import build_tiny_flux_pipeline
from seedgrid.worker.models.tiny_xl import TEXT_WIDTH_2, build_tiny_xl_pipeline
from seedgrid.worker.speedups import apply_speedups
from tests.tiny_lora import RANK, make_tiny_lora

SIZE = 64
STEPS = 2
PROMPT = "a red fox in the snow"
SAME = 1 / 255  # at most this far apart (images in 0..1) counts as the same picture
CHANGED = 0.02  # a LoRA at a noticeable weight moves some pixel at least this far


@pytest.fixture(scope="module")
def lora_folder(tmp_path_factory):
    """LoRAs for `tiny`: a, b and c, and te with a's UNet layers and text encoder layers; for `tiny-xl`: xl-a
    and xl-te likewise; for `tiny-flux`: flux-a; half-fit: a's UNet layers and a text encoder layer too wide."""
    folder = tmp_path_factory.mktemp("loras")
    tiny, tiny_xl = build_tiny_pipeline(), build_tiny_xl_pipeline()
    for seed, name in enumerate("abc", start=1):
        make_tiny_lora(tiny, folder / f"{name}.safetensors", seed=seed)
    make_tiny_lora(tiny, folder / "te.safetensors", seed=1, text_encoders=True)
    make_tiny_lora(tiny_xl, folder / "xl-a.safetensors", seed=1)
    make_tiny_lora(tiny_xl, folder / "xl-te.safetensors", seed=1, text_encoders=True)
    make_tiny_lora(build_tiny_flux_pipeline(), folder / "flux-a.safetensors", seed=1)
    layers = load_file(folder / "a.safetensors")
    wide = "text_encoder.text_model.encoder.layers.0.self_attn.q_proj"
    layers |= {
        f"{wide}.lora_A.weight": torch.ones(RANK, TEXT_WIDTH_2),
        f"{wide}.lora_B.weight": torch.ones(TEXT_WIDTH, RANK),
    }
    save_file(layers, folder / "half-fit.safetensors")
    return folder


@pytest.fixture
def applier(lora_folder) -> LoraApplier:
    return LoraApplier(LoraLibrary(lora_folder))


@pytest.fixture
def pipeline():
    return build_tiny_pipeline()


def image(pipeline, size: int = SIZE) -> np.ndarray:
    """One image from a fresh pipeline object over `pipeline`'s components, as the engine makes one per job."""
    job_pipeline = family_of(pipeline).pipeline_over(dict(pipeline.components), pipeline)
    job_pipeline.set_progress_bar_config(disable=True)
    generator = torch.Generator().manual_seed(1)
    call = dict(num_inference_steps=STEPS, height=size, width=size, generator=generator, output_type="np")
    return job_pipeline(PROMPT, **call).images[0].astype(np.float32)


def apply(applier: LoraApplier, pipeline, loras) -> None:
    applier.apply(family_of(pipeline).pipeline_over(dict(pipeline.components), pipeline), loras)


def diff(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.abs(x - y).max())


def test_a_lora_changes_the_image(applier, pipeline):
    plain = image(pipeline)
    apply(applier, pipeline, [("a", 1.0)])
    assert diff(image(pipeline), plain) > CHANGED
    assert applier.loaded(pipeline) == ["a"]


def test_the_same_loras_give_the_same_pixels_whatever_came_before(applier, pipeline):
    plain = image(pipeline)
    apply(applier, pipeline, [("a", 1.0)])
    with_a = image(pipeline)
    for before in ([("b", 1.0)], [("a", 0.5)], [("b", 0.7), ("a", 1.0)], [("c", 1.0), ("b", -1.0)], []):
        apply(applier, pipeline, before)
        assert diff(image(pipeline), with_a) > CHANGED, before
        apply(applier, pipeline, [("a", 1.0)])
        assert diff(image(pipeline), with_a) <= SAME, before
    apply(applier, pipeline, [])
    assert diff(image(pipeline), plain) <= SAME  # nothing of any LoRA is left


def test_weight_zero_is_the_plain_model_and_the_weight_matters(applier, pipeline):
    plain = image(pipeline)
    apply(applier, pipeline, [("a", 0.0)])
    assert diff(image(pipeline), plain) <= SAME
    images = {}
    for weight in (0.5, 1.0, -1.0):
        apply(applier, pipeline, [("a", weight)])
        images[weight] = image(pipeline)
    assert diff(images[0.5], plain) > CHANGED
    assert diff(images[0.5], images[1.0]) > CHANGED
    assert diff(images[-1.0], images[1.0]) > CHANGED


def test_a_lora_not_in_the_folder_is_refused(applier, pipeline, lora_folder):
    shutil.copy(lora_folder / "a.safetensors", lora_folder.parent / "x.safetensors")
    apply(applier, pipeline, [("a", 1.0)])
    with_a = image(pipeline)
    for name in ["nope", "../x", "x", str(lora_folder.parent / "x"), "a.safetensors", "", "a/../a", "./a"]:
        with pytest.raises(ValueError, match="^loras: .* is not allowed on this worker"):
            apply(applier, pipeline, [("b", 1.0), (name, 1.0)])
        with pytest.raises(ValueError, match="^loras: .* is not allowed on this worker"):
            applier.library.path(name)
    assert applier.loaded(pipeline) == ["a"]
    assert diff(image(pipeline), with_a) <= SAME  # the refused requests changed nothing


def test_lists_that_cannot_be_applied_are_refused(applier, pipeline):
    with pytest.raises(ValueError, match="^loras: a named more than once"):
        applier.apply(pipeline, [("a", 1.0), ("b", 1.0), ("a", 0.5)])
    with pytest.raises(ValueError, match="^loras: the weight of a is not a finite number"):
        applier.apply(pipeline, [("a", float("nan"))])
    with pytest.raises(ValueError, match="^loras: at most 2 at once"):
        LoraApplier(applier.library, max_loaded=2).apply(pipeline, [("a", 1.0), ("b", 1.0), ("c", 1.0)])
    assert applier.loaded(pipeline) == []
    assert pipeline.get_list_adapters() == {}


@pytest.mark.parametrize("name", ["xl-a", "half-fit", "flux-a"])
def test_a_lora_for_another_model_is_refused_and_leaves_nothing_behind(applier, pipeline, name):
    plain = image(pipeline)
    apply(applier, pipeline, [("a", 1.0)])
    with_a = image(pipeline)
    with pytest.raises(ValueError, match=f"^loras: {name} does not fit this model"):
        apply(applier, pipeline, [(name, 1.0)])
    assert applier.loaded(pipeline) == ["a"]
    assert {part: len(adapters) for part, adapters in pipeline.get_list_adapters().items()} == {"unet": 1}
    apply(applier, pipeline, [("a", 1.0)])
    assert diff(image(pipeline), with_a) <= SAME
    apply(applier, pipeline, [])
    assert diff(image(pipeline), plain) <= SAME


@pytest.mark.parametrize(
    ("build", "name", "unet_only"), [(build_tiny_pipeline, "te", "a"), (build_tiny_xl_pipeline, "xl-te", "xl-a")]
)
def test_text_encoder_layers_apply_and_come_off(applier, build, name, unet_only):
    pipeline = build()
    plain = image(pipeline)
    apply(applier, pipeline, [(unet_only, 1.0)])
    same_unet_layers = image(pipeline)
    apply(applier, pipeline, [(name, 1.0)])
    assert diff(image(pipeline), same_unet_layers) > CHANGED  # what its text encoder layers add
    for off in ([(name, 0.0)], []):
        apply(applier, pipeline, off)
        assert diff(image(pipeline), plain) <= SAME, off


@pytest.mark.parametrize("speedup", ["fuse_qkv", "compile"])
def test_loras_are_refused_with_speedups_they_cannot_work_with(applier, pipeline, speedup):
    # fused q, k and v projections would bypass a LoRA's; diffusers loads nothing into a compiled model
    apply_speedups(pipeline, (speedup,), "cpu", compile_backend="eager")
    with pytest.raises(ValueError, match=f"^loras: not with the {speedup} speedup"):
        apply(applier, pipeline, [("a", 1.0)])
    apply(applier, pipeline, [])
    assert applier.loaded(pipeline) == []


def test_the_least_recently_used_lora_is_unloaded(lora_folder, pipeline):
    applier = LoraApplier(LoraLibrary(lora_folder), max_loaded=2)
    apply(applier, pipeline, [("a", 1.0)])
    with_a = image(pipeline)
    for name in "bac":
        apply(applier, pipeline, [(name, 1.0)])
    assert applier.loaded(pipeline) == ["a", "c"]  # b: loaded after a, used before it
    assert len(pipeline.get_list_adapters()["unet"]) == 2
    apply(applier, pipeline, [("b", 1.0)])
    apply(applier, pipeline, [("a", 1.0)])  # loaded again, in place of c
    assert applier.loaded(pipeline) == ["b", "a"]
    assert len(pipeline.get_list_adapters()["unet"]) == 2
    assert diff(image(pipeline), with_a) <= SAME


def test_a_changed_file_is_loaded_again(tmp_path, pipeline):
    make_tiny_lora(pipeline, tmp_path / "a.safetensors", seed=1)
    applier = LoraApplier(LoraLibrary(tmp_path))
    apply(applier, pipeline, [("a", 0.5)])
    first = image(pipeline)
    make_tiny_lora(pipeline, tmp_path / "a.safetensors", seed=2)
    apply(applier, pipeline, [("a", 0.5)])
    assert diff(image(pipeline), first) > CHANGED
    assert len(pipeline.get_list_adapters()["unet"]) == 1
    fresh = build_tiny_pipeline()
    LoraApplier(LoraLibrary(tmp_path)).apply(fresh, [("a", 0.5)])
    assert diff(image(pipeline), image(fresh)) <= SAME


@pytest.mark.parametrize(
    ("build", "dtype", "size"),
    [
        (build_tiny_pipeline, torch.float16, SIZE),
        (build_tiny_pipeline, torch.bfloat16, SIZE),
        (build_tiny_xl_pipeline, torch.float16, 3 * SIZE),  # large enough for the rounding below to show
    ],
)
def test_half_precision_on_the_cpu(applier, build, dtype, size):
    pipeline = build().to(dtype=dtype)
    name = "a" if family_of(pipeline).name == "sd" else "xl-a"
    apply(applier, pipeline, [])
    plain = image(pipeline, size)
    apply(applier, pipeline, [(name, 1.0)])
    with_lora = image(pipeline, size)
    assert next(p for n, p in pipeline.unet.named_parameters() if ".lora_A." in n).dtype == dtype
    assert np.isfinite(with_lora).all()
    assert diff(with_lora, plain) > CHANGED
    apply(applier, pipeline, [])
    # Exactly: peft freezes the weights it wraps, and torch's half-precision CPU kernels for frozen weights
    # round differently, which shifted plain images once a LoRA had loaded (the applier freezes them first).
    assert diff(image(pipeline, size), plain) == 0


def test_the_library_serves_only_safetensors_files_with_plain_names(tmp_path, caplog):
    for name in ["good", "v1.2+x-y_Z", "-dash", "with space", ".hidden", "x" * 101]:
        (tmp_path / f"{name}.safetensors").write_bytes(b"")
    (tmp_path / "notes.txt").write_bytes(b"")
    (tmp_path / "folder.safetensors").mkdir()
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "inner.safetensors").write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="seedgrid.worker.loras"):
        library = LoraLibrary(tmp_path)
    assert library.names() == ["good", "v1.2+x-y_Z"]
    assert "'-dash.safetensors'" in caplog.text and "'with space.safetensors'" in caplog.text
    assert library.path("good") == tmp_path / "good.safetensors"

    (tmp_path / "later.safetensors").write_bytes(b"")
    assert library.names() == ["good", "v1.2+x-y_Z"]
    library.refresh()
    assert library.names() == ["good", "later", "v1.2+x-y_Z"]
    (tmp_path / "dropped.safetensors").write_bytes(b"")
    assert library.path("dropped") == tmp_path / "dropped.safetensors"  # looked for when asked for
    (tmp_path / "good.safetensors").unlink()
    with pytest.raises(ValueError, match="^loras: 'good' is not allowed"):
        library.path("good")
    assert library.names() == ["dropped", "later", "v1.2+x-y_Z"]


def test_a_worker_without_a_lora_folder_serves_none(tmp_path):
    assert LoraLibrary(None).names() == []
    with pytest.raises(ValueError, match="^loras: 'a' is not allowed on this worker"):
        LoraLibrary(None).path("a")
    with pytest.raises(ValueError, match="^loras: .* is not a folder"):
        LoraLibrary(tmp_path / "missing")


def test_worker_refuses_loras_with_a_speedup_that_cannot_take_them_in_one_line(tmp_path, capsys):
    from seedgrid.worker.cli import main

    argv = ["--loras", str(tmp_path), "--speedups", "fuse_qkv", "--device", "cpu", "--redis", "redis://127.0.0.1:1/0"]
    assert main(argv) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "seedgrid worker: --loras: LoRAs cannot be applied with the fuse_qkv speedup"
    ]
