"""bench/fleet.py runs end to end with a small simulated fleet (structure only: no timing asserts)."""

import json

from bench.fleet import main


def test_fleet_benchmark_runs_and_reports_scaling_and_fairness(tmp_path, capsys):
    out = tmp_path / "fleet.json"
    results = main(
        [
            "--workers",
            "1,2",
            "--jobs-per-worker",
            "2",
            "--seconds",
            "0.05",
            "--fair-seconds",
            "0.01",
            "--json",
            str(out),
        ]
    )
    assert json.loads(out.read_text()) == results
    assert [row["workers"] for row in results["scaling"]] == [1, 2]
    for row in results["scaling"]:
        assert row["succeeded"] == row["jobs"] == 2 * row["workers"]
        assert row["jobs_per_second"] > 0 and row["perfect_jobs_per_second"] == row["workers"] / 0.05
    assert [row["turn_images"] for row in results["fairness"]] == ["one batch", 0]
    assert all(row["single_image_wait_s"] > 0 for row in results["fairness"])
    printed = capsys.readouterr().out
    assert printed.startswith("SIMULATION:") and "scaling" in printed and "single image waited" in printed
