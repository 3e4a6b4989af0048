"""bench/fleet.py runs end to end with a small simulated fleet (structure only: no timing asserts)."""

import json

import pytest

from bench.fleet import main

# Every test here starts worker, Redis or CLI processes.
pytestmark = pytest.mark.processes


def test_fleet_benchmark_runs_and_reports_scaling_and_fairness(tmp_path, capsys):
    out = tmp_path / "fleet.json"
    argv = ["--workers", "2", "--jobs-per-worker", "2", "--seconds", "0.02", "--fair-seconds", "0.01"]
    results = main([*argv, "--json", str(out)])
    assert json.loads(out.read_text()) == results
    # A fleet of two (the scaling run) and of one (each fairness run) came online and did every job.
    [row] = results["scaling"]
    assert row["workers"] == 2 and row["succeeded"] == row["jobs"] == 4 and row["jobs_per_second"] > 0
    assert [row["turn_images"] for row in results["fairness"]] == ["one batch", 0]
    assert all(row["single_image_wait_s"] > 0 and row["large_job_s"] > 0 for row in results["fairness"])
    assert capsys.readouterr().out.startswith("SIMULATION:")  # it says first that it measures no GPU
