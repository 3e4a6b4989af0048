"""bench.gpu's CPU path with the tiny model (what CI can run), and SD1.5's configs checked without allocating them."""

import gc
import json
import subprocess
from pathlib import Path

import pytest
import torch

from bench import gpu
from bench.family_configs import build_flux_schnell_random, build_sdxl_random
from bench.sd15_configs import (
    SD15_TEXT_PARAMETERS,
    SD15_UNET_PARAMETERS,
    SD15_VAE_PARAMETERS,
    build_sd15_random,
    parameter_counts_on_meta,
)
from seedgrid.worker.speedups import SPEEDUPS

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--model", "tiny", "--device", "cpu", "--steps", "1", "--size", "64", "--repeats", "1"]


@pytest.fixture(autouse=True)
def frozen_heap():
    """bench.gpu collects garbage before each timed call; over this process's heap (torch, diffusers, pytest)
    a collection takes about half a second on a small CPU, most of these tests' time. Frozen, the heap already
    here is left out of those collections; what the benchmark makes is still collected."""
    gc.freeze()
    yield
    gc.unfreeze()


def test_tiny_cpu_run_measures_both_sides_at_each_batch_and_writes_the_json(tmp_path, capsys):
    path = tmp_path / "gpu.json"
    assert gpu.main(TINY + ["--batches", "1,2", "--probe-batch", "2", "--json", str(path)]) == 0
    printed = capsys.readouterr().out
    report = json.loads(path.read_text())

    assert report["complete"] and report["schema"] == "seedgrid-bench-gpu/1"
    assert report["args"]["batches"] == [1, 2] and report["args"]["model"] == "tiny"
    env = report["environment"]
    assert env["torch"] == torch.__version__ and env["diffusers"] and env["device_name"] and env["date"]
    assert report["settings"]["flop_per_image"] is None  # no FLOP figure for tiny, so no datasheet fraction
    assert report["sides"] == ["stock", "engine"]
    for side in ("stock", "engine"):
        assert report["load_s"][side] > 0 and report["warmup_s"][side] > 0
        assert 0 < report["weights_gib"][side] < 0.01
    assert [row["batch"] for row in report["batches"]] == [1, 2]
    for row in report["batches"]:
        for side in ("stock", "engine"):
            m = row[side]
            assert m["status"] == "ok" and len(m["times_s"]) == 1 and m["first_s"] > 0 and m["images_per_s"] > 0
            assert m["peak_gib"] is None and m["fraction_of_datasheet"] is None  # no GPU, no FLOP figure
        # The engine made every image of the batch in one go, none NaN or black.
        assert row["engine"]["bad_images"] == 0 and row["engine"]["max_batch_after"] == row["batch"]
        assert row["engine_over_stock"] > 0
    probe = report["largest_engine_batch"]
    assert probe["asked"] == 2 and probe["picked"] == 2 and probe["images"] == 2 and probe["bad_images"] == 0
    assert report["skipped"] == [] and report["elapsed_s"] > 0

    # The printed table has a row per batch size and side, and claims no share of a datasheet off a GPU.
    table_rows = [line for line in printed.splitlines() if line.startswith(("| 1 |", "| 2 |"))]
    assert len(table_rows) == 4 and all("n/a" in line for line in table_rows)


def test_variants_are_measured_as_more_engine_sides_against_stock(tmp_path, capsys):
    path = tmp_path / "gpu.json"
    argv = TINY + ["--batches", "1", "--probe-batch", "0", "--variants", "channels_last+fuse_qkv", "--json", str(path)]
    assert gpu.main(argv) == 0
    report = json.loads(path.read_text())
    names = ["stock", "engine", "engine+channels_last+fuse_qkv"]
    assert report["sides"] == names and report["args"]["variants"] == [["channels_last", "fuse_qkv"]]
    [row] = report["batches"]
    assert sorted(row["over_stock"]) == sorted(names[1:])
    for name in names[1:]:
        assert row[name]["status"] == "ok" and row[name]["bad_images"] == 0 and row["over_stock"][name] > 0
    assert "skipped" in report["largest_engine_batch"]  # --probe-batch 0
    printed_sides = [
        line.split("|")[2].strip() for line in capsys.readouterr().out.splitlines() if line.startswith("| 1 |")
    ]
    assert printed_sides == names


def test_variants_are_sets_of_speedups_and_an_unknown_one_is_refused_with_the_known_ones(capsys):
    args = gpu.parse_args(["--device", "cpu", "--variants", "fuse_qkv, channels_last+fuse_qkv"])
    assert args.variants == [("fuse_qkv",), ("channels_last", "fuse_qkv")]
    with pytest.raises(SystemExit):
        gpu.parse_args(["--device", "cpu", "--variants", "turbo"])
    [error] = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert "--variants" in error and "--speedups" not in error and "turbo" in error
    assert all(name in error for name in SPEEDUPS)


def test_time_budget_skips_what_would_not_fit(tmp_path, capsys):
    path = tmp_path / "gpu.json"
    assert gpu.main(TINY + ["--batches", "1,4", "--time-budget", "0.001", "--json", str(path)]) == 0
    report = json.loads(path.read_text())
    assert report["complete"] and report["batches"] == []
    assert [s.split(":")[0] for s in report["skipped"]] == ["batch 1", "batch 4", "largest-batch probe"]
    assert "skipped" in report["largest_engine_batch"]
    printed = capsys.readouterr().out
    assert all(reason in printed for reason in report["skipped"])  # the printed report says what it left out


def test_out_of_memory_is_recorded_and_larger_batches_skipped():
    args = gpu.parse_args(TINY + ["--batches", "1"])
    stock = gpu.Side("stock", gpu.load_stock(args), gpu.stock_call, (False, True))

    def runs_out_above_one(pipe, args_, batch):
        if batch > 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 GiB")
        return gpu.stock_call(pipe, args_, batch)

    stock.call = runs_out_above_one
    ok, oom, after = (gpu.measure_batch([stock], args, b) for b in (1, 2, 4))
    assert ok["stock"]["status"] == "ok" and "engine_over_stock" not in ok
    assert oom["stock"]["status"] == "oom" and "out of memory" in oom["stock"]["error"]
    assert after["stock"] == {"status": "skipped", "reason": "out of memory at batch 2"}


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_offload_modes_are_refused_on_the_cpu_and_full_is_the_default(capsys):
    assert gpu.parse_args(["--device", "cpu"]).memory == "full"
    with pytest.raises(SystemExit):
        gpu.parse_args(["--device", "cpu", "--memory", "model-offload"])
    assert "--memory model-offload: offloading needs --device cuda" in capsys.readouterr().err


def test_cuda_is_refused_without_a_gpu():
    with pytest.raises(SystemExit):
        gpu.parse_args(["--device", "cuda"])


def test_sd15_configs_give_sd15s_parameter_counts():
    counts = parameter_counts_on_meta()
    assert counts == {"unet": SD15_UNET_PARAMETERS, "vae": SD15_VAE_PARAMETERS, "text_encoder": SD15_TEXT_PARAMETERS}
    assert round(counts["unet"] / 1e6, 1) == 859.5


def test_build_sd15_random_on_meta_is_sd15_sized_in_the_asked_dtype():
    pipe = build_sd15_random(torch.float16, "meta")  # meta: no memory, no init time
    assert sum(p.numel() for p in pipe.unet.parameters()) == SD15_UNET_PARAMETERS
    assert pipe.unet.dtype == pipe.vae.dtype == pipe.text_encoder.dtype == torch.float16
    assert pipe.unet.device.type == "meta"
    assert pipe.vae.config.scaling_factor == 0.18215 and pipe.vae_scale_factor == 8
    assert pipe.unet.config.sample_size == 64 and pipe.unet.config.cross_attention_dim == 768
    assert pipe.safety_checker is None
    ids = pipe.tokenizer(gpu.PROMPT, padding="max_length", max_length=77).input_ids
    assert len(ids) == 77 and max(ids) < pipe.text_encoder.config.vocab_size == 49408
    assert type(pipe.scheduler).__name__ == "PNDMScheduler" and pipe.scheduler.config.steps_offset == 1


@pytest.mark.parametrize("family, model", [("sdxl", "tiny-xl"), ("flux", "tiny-flux")])
def test_cpu_rehearsal_of_sdxl_and_flux_makes_every_image_on_both_sides(tmp_path, capsys, family, model):
    path = tmp_path / "gpu.json"
    argv = ["--family", family, "--model", model, "--device", "cpu", "--steps", "1", "--size", "64"]
    assert gpu.main(argv + ["--repeats", "1", "--batches", "2", "--probe-batch", "0", "--json", str(path)]) == 0
    report = json.loads(path.read_text())
    assert report["complete"] and report["args"]["family"] == family and report["args"]["model"] == model
    [row] = report["batches"]
    for side in ("stock", "engine"):
        assert row[side]["status"] == "ok" and row[side]["images_per_s"] > 0 and row[side]["first_s"] > 0
        assert 0 < report["weights_gib"][side] < 0.01  # every network counted, none missing (no UNet in Flux)
    assert row["engine"]["bad_images"] == 0 and row["engine"]["max_batch_after"] == 2  # 2 images, none NaN/black
    printed = capsys.readouterr().out
    assert f"{model} ({family})" in printed
    # SDXL's anchors are printed beside its figures, said to be from elsewhere; no other family has them.
    assert ("NOT measured here" in printed) == (family == "sdxl") == (report["anchors"] is not None)


def test_each_family_has_its_own_defaults_and_refuses_another_familys_model(capsys):
    sd = gpu.parse_args(["--device", "cpu"])
    assert (sd.model, sd.size, sd.steps, sd.guidance, sd.batches) == ("sd15", 512, 20, 7.5, [1, 4, 8, 16, 32])
    xl = gpu.parse_args(["--family", "sdxl", "--device", "cpu"])
    assert (xl.model, xl.size, xl.steps, xl.scheduler, xl.batches) == ("sdxl", 1024, 20, "euler", [1, 2, 4, 8])
    flux = gpu.parse_args(["--family", "flux", "--device", "cpu", "--steps", "2"])
    assert (flux.model, flux.size, flux.steps, flux.guidance) == ("flux-schnell", 1024, 2, 0.0)
    with pytest.raises(SystemExit):
        gpu.parse_args(["--family", "sd", "--model", "tiny-xl", "--device", "cpu"])
    assert "tiny-xl is not of --family sd" in capsys.readouterr().err


def test_sdxl_and_flux_schnell_configs_build_at_their_real_sizes_on_meta():
    xl = build_sdxl_random(torch.float16, "meta")  # meta: no memory, no init time
    assert type(xl).__name__ == "StableDiffusionXLPipeline" and xl.unet.device.type == "meta"
    assert xl.unet.dtype == xl.text_encoder_2.dtype == torch.float16
    assert sum(p.numel() for p in xl.unet.parameters()) == 2_567_463_684  # SDXL base 1.0's UNet
    assert xl.unet.config.cross_attention_dim == 2048 and tuple(xl.unet.config.transformer_layers_per_block) == (
        1,
        2,
        10,
    )
    assert xl.text_encoder_2.config.hidden_size == 1280 and xl.text_encoder_2.config.num_hidden_layers == 32
    assert xl.vae.config.scaling_factor == 0.13025 and xl.vae.config.force_upcast
    assert type(xl.scheduler).__name__ == "EulerDiscreteScheduler"

    flux = build_flux_schnell_random(torch.bfloat16, "meta")
    config = flux.transformer.config
    assert (config.num_layers, config.num_single_layers, config.guidance_embeds) == (19, 38, False)  # schnell
    assert flux.transformer.dtype == flux.text_encoder_2.dtype == torch.bfloat16
    assert round(sum(p.numel() for p in flux.transformer.parameters()) / 1e9, 2) == 11.89
    assert sum(p.numel() for p in flux.text_encoder_2.parameters()) == 4_762_310_656  # T5-XXL's encoder
    assert flux.text_encoder_2.config.d_model == 4096 and flux.tokenizer_2.model_max_length == 512
    assert flux.vae.config.latent_channels == 16 and flux.vae.config.shift_factor == 0.1159
    assert flux.scheduler.config.shift == 1.0 and not flux.scheduler.config.use_dynamic_shifting


def test_gpu_sh_is_valid_bash_and_runs_each_family():
    script = ROOT / "bench" / "gpu.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    assert '-m bench.gpu --family "$fam" --device cuda' in text and "--model sd15" in text
    assert '--json "$OUT/gpu.json"' in text and '--json "$OUT/gpu-$fam.json"' in text
    assert "FAMILIES:-sd sdxl flux" in text
