"""Memory plans for small GPUs: chosen from the weights' size and the GPU's free memory, applied to a pipeline.

There is no GPU here, so the choice is checked on memory figures: cards of n GiB with ~0.8 GB taken by the
driver and context, and the published models' weights (float16, Flux in bfloat16) in decimal GB.
"""

import pytest
import torch

from seedgrid.worker.memory_plan import (
    MEMORY_MODES,
    MemoryPlan,
    ModelSize,
    apply_plan,
    choose_plan,
    gpu_free_bytes,
    model_size,
)
from seedgrid.worker.models.tiny import build_tiny_pipeline

GB = 10**9
SIZES = {
    "sd": ModelSize(total_bytes=int(2.1 * GB), denoiser_bytes=int(1.7 * GB)),  # SD 1.5, UNet
    "sdxl": ModelSize(total_bytes=int(6.9 * GB), denoiser_bytes=int(5.1 * GB)),  # SDXL base, UNet
    "flux": ModelSize(total_bytes=int(33.7 * GB), denoiser_bytes=int(23.8 * GB)),  # FLUX.1, transformer
}
FULL, MODEL, SEQUENTIAL = "full", "model-offload", "sequential-offload"
# card size in GiB -> (SD 1.5, SDXL, FLUX.1)
EXPECTED = {
    4: (MODEL, SEQUENTIAL, SEQUENTIAL),
    6: (FULL, SEQUENTIAL, SEQUENTIAL),
    8: (FULL, MODEL, SEQUENTIAL),
    12: (FULL, FULL, SEQUENTIAL),
    16: (FULL, FULL, SEQUENTIAL),
    24: (FULL, FULL, SEQUENTIAL),  # FLUX.1's transformer alone is larger than the card
    32: (FULL, FULL, MODEL),
    48: (FULL, FULL, FULL),
    80: (FULL, FULL, FULL),
}


def free_on_card(gib: int) -> int:
    return gib * 2**30 - int(0.8 * GB)


@pytest.mark.parametrize("gib", sorted(EXPECTED))
def test_auto_plan_per_card_and_family_given_memory_figures(gib):
    chosen = tuple(choose_plan("auto", free_on_card(gib), SIZES[f], f).mode for f in ("sd", "sdxl", "flux"))
    assert chosen == EXPECTED[gib]


def test_auto_plan_tiles_the_vae_exactly_when_offloading_given_memory_figures():
    for gib in EXPECTED:
        for family, size in SIZES.items():
            plan = choose_plan("auto", free_on_card(gib), size, family)
            assert plan.vae_tiling == (plan.mode != "full"), (gib, family, plan)


def test_auto_reason_gives_the_figures_given_memory_figures():
    plan = choose_plan("auto", free_on_card(8), SIZES["sdxl"], "sdxl")
    assert plan.reason == "model-offload: 6.9 GB of weights, 7.8 GB free on the GPU"


@pytest.mark.parametrize("mode", ["full", "model-offload", "sequential-offload"])
def test_explicit_mode_is_honoured_given_memory_figures(mode):
    small = choose_plan(mode, free_on_card(4), SIZES["flux"], "flux")  # auto would stream Flux layer by layer
    large = choose_plan(mode, free_on_card(80), SIZES["sd"], "sd")  # auto would keep SD all on the GPU
    for plan in (small, large):
        assert (plan.mode, plan.vae_tiling) == (mode, mode != "full")
        assert plan.reason.startswith(f"{mode} (--memory): ")


def test_unknown_mode_is_refused_naming_the_option():
    with pytest.raises(ValueError, match=r"--memory.*'low'.*auto, full, model-offload, sequential-offload"):
        choose_plan("low", free_on_card(8), SIZES["sd"], "sd")
    assert MEMORY_MODES == ("auto", "full", "model-offload", "sequential-offload")


def test_no_gpu_means_full_given_memory_figures():
    plan = choose_plan("auto", None, SIZES["flux"], "flux")
    assert (plan.mode, plan.vae_tiling) == ("full", False)
    assert "GPUs only" in plan.reason


def test_cpu_free_memory_is_none_without_touching_cuda(monkeypatch):
    def touched(*args, **kwargs):
        raise AssertionError("CUDA queried for a CPU device")

    monkeypatch.setattr(torch.cuda, "mem_get_info", touched)
    assert gpu_free_bytes("cpu") is None


def tensor_bytes(module: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in (*module.parameters(), *module.buffers()))


def test_model_size_of_the_tiny_pipeline():
    pipeline = build_tiny_pipeline()
    size = model_size(pipeline)
    # Counted the other way round: parameters by dtype width, then the buffers, part by part.
    unet = sum(p.numel() for p in pipeline.unet.parameters()) * 4 + sum(
        b.numel() * b.element_size() for b in pipeline.unet.buffers()
    )
    assert size.denoiser_bytes == unet > 0
    parts = (pipeline.unet, pipeline.vae, pipeline.text_encoder)
    assert size.total_bytes == sum(tensor_bytes(part) for part in parts) > size.denoiser_bytes
    halved = model_size(pipeline.to(torch.float16))  # the bytes are those of the dtype the weights run in
    assert halved.denoiser_bytes * 2 == size.denoiser_bytes


def test_full_plan_on_cpu_with_vae_tiling():
    pipeline = build_tiny_pipeline()
    placed = apply_plan(pipeline, MemoryPlan("full", True, "full"), "cpu")
    assert placed.vae.use_tiling is True
    assert placed.device.type == "cpu"
    untiled = apply_plan(build_tiny_pipeline(), MemoryPlan("full", False, "full"), "cpu")
    assert untiled.vae.use_tiling is False


@pytest.mark.parametrize("mode", ["model-offload", "sequential-offload"])
def test_offload_on_cpu_is_refused(mode):
    pipeline = build_tiny_pipeline()
    with pytest.raises(ValueError, match=f"--memory {mode}: .*CPU"):
        apply_plan(pipeline, MemoryPlan(mode, True, mode), "cpu")
    assert pipeline.vae.use_tiling is False  # refused before anything changed


def test_worker_refuses_an_offload_mode_on_the_cpu_in_one_line_before_loading(capsys):
    from seedgrid.worker.cli import main

    assert main(["--memory", "model-offload", "--device", "cpu", "--redis", "redis://127.0.0.1:1/0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["seedgrid worker: --memory model-offload offloads to a GPU: it needs --device cuda"]


def test_the_loaded_model_reports_its_memory_plan_in_the_heartbeat():
    from seedgrid.worker.runtime import WorkerRuntime

    runtime = WorkerRuntime.load("redis://127.0.0.1:1/0", "tiny", "cpu", memory="auto")
    assert runtime.info().memory_plan.startswith("full: not a CUDA device")
