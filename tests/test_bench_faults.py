"""bench/faults.py runs end to end with tiny arguments (structure only: no timing asserts)."""

import json

import pytest

from bench.faults import main

# It starts Redis servers and worker processes.
pytestmark = pytest.mark.processes


def test_faults_benchmark_measures_both_modes_and_every_job_finishes_once(tmp_path, capsys):
    out = tmp_path / "faults.json"
    argv = ["--kills", "1", "--workers", "2", "--images", "3", "--seconds", "0.05"]
    results = main([*argv, "--visibility-timeout", "6", "--lease-seconds", "3", "--json", str(out)])
    assert json.loads(out.read_text()) == results
    on, off = results["modes"]
    assert (on["mode"], off["mode"]) == ("leases on", "takeover off")
    for mode in (on, off):
        assert mode["kills"] == mode["jobs_finished"] == 1 and mode["stored_twice"] == 0
        assert 0 < mode["median_s"] <= mode["worst_s"] < 60
    assert on["taken_over"] == 1  # a live worker took the job over, its record names the dead one
    assert off["taken_over"] == 0  # SEEDGRID_LEASE_TAKEOVER=0: the visibility timeout brought it back
    printed = capsys.readouterr().out
    assert printed.startswith("SIMULATION:") and "visibility timeout 6 s in both modes" in printed
    assert "| leases on | 1 |" in printed and "| takeover off | 1 |" in printed
