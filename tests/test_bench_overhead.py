"""The queue-overhead benchmark runs end to end (real Redis, real worker, tiny) and reports sane numbers.

It checks the structure of the result, not the targets: timings are for the benchmark to print.
"""

import json
import math
import shlex

import pytest

from bench.overhead import PNG_ENCODE_REPEATS, main, percentile

# Every test here starts worker, Redis or CLI processes.
pytestmark = pytest.mark.processes

JOBS, IMAGES, STEPS = 2, 2, 1
ALWAYS_POSITIVE = [
    "direct_ms",
    "queue_ms",
    "png_encode_image_ms",
    "ratio",
    "submit_ms",
    "worker_ms",
    "fetch_ms",
    "polls",
]
ANY_SIGN = [
    "overhead_job_ms",
    "overhead_image_ms",
    "queue_wait_ms",
    "worker_bookkeeping_ms",
    "runner_bookkeeping_ms",
    "detect_ms",
]


def test_percentile_interpolates_between_ranks():
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 50) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 95) == pytest.approx(4.8)
    assert percentile([7.0], 95) == 7.0


def test_bad_arguments_are_refused_before_anything_starts(capsys):
    with pytest.raises(SystemExit):
        main(["--jobs", "0"])
    assert "--jobs" in capsys.readouterr().err


def test_overhead_benchmark_reports_sane_numbers(tmp_path, capsys):
    path = tmp_path / "overhead.json"
    argv = ["--jobs", str(JOBS), "--images-per-job", str(IMAGES), "--steps", str(STEPS), "--warmup", "1"]
    argv += ["--json", str(path)]
    result = main(argv)
    out = capsys.readouterr().out

    assert json.loads(path.read_text()) == json.loads(json.dumps(result))
    config = result["config"]
    assert (config["jobs"], config["images_per_job"], config["size"], config["steps"]) == (JOBS, IMAGES, 64, STEPS)

    rounds = result["rounds"]
    assert len(rounds) == JOBS
    for r in rounds:
        assert r["images"] == IMAGES and r["png_bytes"] > 0 and r["polls"] >= 1
        assert min(r["direct_s"], r["queue_s"], r["runner_s"], r["worker_s"], r["submit_s"], r["fetch_s"]) > 0
        # The client's clock and the job record's stamps line up: the parts fit inside the whole.
        assert r["submit_s"] + r["worker_s"] + r["fetch_s"] <= r["queue_s"]

    stats = result["stats"]
    for key in ALWAYS_POSITIVE + ANY_SIGN:
        s = stats[key]
        assert math.isfinite(s["p50"]) and s["p95"] >= s["p50"], key
        assert s["n"] == (PNG_ENCODE_REPEATS * IMAGES if key == "png_encode_image_ms" else JOBS), key
    for key in ALWAYS_POSITIVE:
        assert stats[key]["p50"] > 0, key

    commands = result["redis_commands_per_job"]
    assert commands["hgetall"] >= 1 and commands["hset"] >= 1  # the client's polls, the worker's records

    env = result["environment"]
    assert env["cpus"] >= 1 and env["python"] and env["torch"] and shlex.split(env["command"])[3:] == argv
    # The printed verdicts are the JSON's.
    verdicts = ["PASS" if t["pass"] else "MISS" for t in result["targets"].values()]
    assert sorted(word for word in out.split() if word in ("PASS", "MISS")) == sorted(verdicts)
