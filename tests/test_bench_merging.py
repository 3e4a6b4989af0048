"""bench/merging.py runs end to end (two real workers on tiny, real Redis) and reports both modes.

It checks the structure and the image equality, not the speed: the ratio is for the benchmark to print.
"""

import json

import pytest

from bench.merging import main

# Every test here starts worker, Redis or CLI processes.
pytestmark = pytest.mark.processes

MODES = (["merge"], ["alone"])


def test_bad_arguments_are_refused_before_anything_starts(capsys):
    with pytest.raises(SystemExit):
        main(["--clients", "0"])
    assert "--clients" in capsys.readouterr().err


def test_merging_benchmark_runs_both_modes_and_their_images_agree(tmp_path, capsys):
    out = tmp_path / "merging.json"
    report = main(
        ["--jobs", "4", "--clients", "2", "--rounds", "2", "--size", "64", "--steps", "1", "--json", str(out)]
    )
    assert json.loads(out.read_text()) == report
    # Every job of both workers made its image, and the same seed gave the same image merged or alone.
    assert report["all_succeeded"] and report["max_pixel_difference"] <= 2
    rounds = [(r["round"], r["mode"]) for r in report["rounds"]]
    assert rounds == [(1, "merge"), (1, "alone"), (2, "alone"), (2, "merge")]  # the order alternates
    for row in report["rounds"]:
        assert row["images"] == 4 and row["images_per_second"] > 0
        assert (row["batches"] == 4) if row["mode"] == "alone" else (1 <= row["batches"] <= 4)
    printed = [line.split()[:2] for line in capsys.readouterr().out.splitlines() if line.split()[1:2] in MODES]
    assert printed == [[str(n), mode] for n, mode in rounds]  # a line per round as it ends


def test_a_saved_random_model_folder_loads_as_a_worker_model(tmp_path):
    """bench/save_model.py with the tiny builder standing in for SD1.5 (1.07 billion parameters on a CPU)."""
    from bench.save_model import save_random_model
    from seedgrid.worker.models.loading import load_pipeline, model_display_name
    from seedgrid.worker.models.tiny import build_tiny_pipeline

    folder = save_random_model(tmp_path / "random-model", "cpu", build=lambda dtype, device: build_tiny_pipeline())
    pipeline = load_pipeline(str(folder), "cpu")
    assert model_display_name(str(folder)) == "random-model"
    assert sum(p.numel() for p in pipeline.unet.parameters()) == sum(
        p.numel() for p in build_tiny_pipeline().unet.parameters()
    )
