"""bench/plots.py runs end to end with a 2x2 plot on two SIMULATED workers (no torch: they start in a second;
structure only, no timing asserts). The tiny workers' run is the benchmark itself (bench/RESULTS.md)."""

import json

import pytest

from bench.plots import WORKERS, main

# It starts Redis and worker processes.
pytestmark = pytest.mark.processes


def test_plots_benchmark_runs_the_plot_and_its_cells_as_separate_jobs(tmp_path, capsys):
    out = tmp_path / "plots.json"
    results = main(["--cells-per-axis", "2", "--model", "simulated", "--json", str(out)])
    assert json.loads(out.read_text()) == results
    assert [row["run"] for row in results["runs"]] == ["plot", "separate jobs"]
    # Two steps values of two seeds each: two jobs as a plot, four alone.
    assert [(row["cells"], row["jobs"], row["succeeded"]) for row in results["runs"]] == [(4, 2, 2), (4, 4, 4)]
    for row in results["runs"]:
        assert set(row["cells_by_worker"]) <= set(WORKERS) and sum(row["cells_by_worker"].values()) == 4
        assert row["images_per_second"] > 0
    assert results["images_per_second_ratio"] > 0
    assert "plot / separate jobs: images/s " in capsys.readouterr().out
