"""bench/models.py runs end to end with a few jobs of SIMULATED models (no torch: the workers start in a second;
structure only, no timing asserts). The tiny models' run is the benchmark itself (bench/RESULTS.md)."""

import json

import pytest

from bench.models import main

# It starts Redis and worker processes.
pytestmark = pytest.mark.processes


def test_models_benchmark_runs_both_policies(tmp_path):
    out = tmp_path / "models.json"
    results = main(["--jobs", "4", "--simulated", "0.2", "--json", str(out)])
    assert json.loads(out.read_text()) == results
    assert [row["policy"] for row in results["policies"]] == ["affinity", "round robin"]
    assert all(row["succeeded"] == row["jobs"] == 4 and row["model_loads"] >= 1 for row in results["policies"])
    # Alternating jobs, all queued at once: the loaded model's queue first loads twice, round robin each time.
    assert [row["model_loads"] for row in results["policies"]] == [2, 4]
