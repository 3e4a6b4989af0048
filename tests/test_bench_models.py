"""bench/models.py runs end to end with a few jobs (structure only: no timing asserts)."""

import json

import pytest

from bench.models import main

# It starts Redis and worker processes.
pytestmark = pytest.mark.processes


def test_models_benchmark_runs_both_policies(tmp_path):
    out = tmp_path / "models.json"
    results = main(["--jobs", "4", "--json", str(out)])
    assert json.loads(out.read_text()) == results
    assert [row["policy"] for row in results["policies"]] == ["affinity", "round robin"]
    assert all(row["succeeded"] == row["jobs"] == 4 and row["model_loads"] >= 1 for row in results["policies"])
