"""Plots and dynamic prompts through the session's tiny worker: `seedgrid plot` writes cells whose
metadata match plot.json, a cell equals the same settings made as a plain job, S/R and {a|b}
expansions land in the PNGs, and a whole plot is cancelled (by the library and by Ctrl+C)."""

import json
import os
import signal
import subprocess
import sys
import uuid

import pytest
from PIL import Image

from seedgrid.client.api import SeedgridClient
from seedgrid.client.cli.main import main
from seedgrid.client.plot_save import save_plot
from seedgrid.shared.job import JobState
from seedgrid.shared.plot import make_plot
from seedgrid.shared.pngmeta import read_png_metadata
from seedgrid.shared.request import JobRequest, RequestError
from tests.helpers import default_sigint, max_pixel_diff

pytestmark = pytest.mark.processes

SEEDGRID = [sys.executable, "-m", "seedgrid.client.cli.main"]
SMALL = ["--width", "64", "--height", "64", "--steps", "2"]
UNSERVED = ["--model", "nobody-serves-this", "--queue-anyway"]  # queued, and stays queued


def start(*args: str, redis_url: str, client_id: str = "") -> subprocess.Popen:
    env = {**os.environ, "SEEDGRID_REDIS_URL": redis_url}
    env.update({"SEEDGRID_CLIENT_ID": client_id} if client_id else {})
    return subprocess.Popen(
        [*SEEDGRID, *args],
        text=True,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=default_sigint,
    )


def seedgrid(*args: str, redis_url: str, timeout: float = 120) -> subprocess.CompletedProcess:
    proc = start(*args, redis_url=redis_url)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_plot_3x2_over_steps_and_scheduler_writes_cells_plot_png_and_json(redis_url, tiny_worker, tmp_path):
    result = seedgrid(
        "plot", "a red cube", "--seeds", "4", *SMALL, "--x", "steps=2-4", "--y", "scheduler=euler,ddim",
        "--out", str(tmp_path), redis_url=redis_url,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(tmp_path / "plot.png"), str(tmp_path / "plot.json")]
    assert "cells 6/6" in result.stderr and "images/s" in result.stderr
    doc = json.loads((tmp_path / "plot.json").read_text())
    assert [a["setting"] for a in doc["axes"]] == ["steps", "scheduler"] and len(doc["cells"]) == 6
    assert {j["state"] for j in doc["jobs"]} == {"succeeded"}
    for cell in doc["cells"]:
        meta = read_png_metadata(tmp_path / cell["file"])
        assert meta.request.steps == cell["settings"]["steps"] == (2, 3, 4)[cell["x"]]
        assert meta.request.scheduler == cell["settings"]["scheduler"] == ("euler", "ddim")[cell["y"]]
        assert (meta.item.prompt, meta.item.seed, meta.request.width) == ("a red cube", 4, 64)
        assert f"Steps: {cell['settings']['steps']}," in meta.parameters
    assert read_png_metadata(tmp_path / "plot.png").request is None  # the picture, not a cell
    with Image.open(tmp_path / "plot.png") as picture:
        assert picture.width > 3 * 64 and picture.height > 2 * 64  # the labels' margins


def test_seed_and_sr_fold_into_one_job_whose_cells_equal_plain_jobs(client, tiny_worker, tmp_path):
    base = JobRequest(prompts=["a red cube"], seeds=[0], width=64, height=64, steps=3, scheduler="euler")
    plot = make_plot(base, x="seed=7,8", y="sr=red,blue")
    assert len(plot.jobs) == 1  # two prompts x two seeds, one batch
    submitted = client.submit_plot(plot)
    statuses = client.wait_plot(submitted, timeout=120)
    assert [s.state for s in statuses.values()] == [JobState.SUCCEEDED]
    saved = save_plot(client, submitted, statuses, tmp_path)
    for cell, path in zip(plot.cells, saved.cell_paths, strict=True):
        meta = read_png_metadata(path)
        assert (meta.item.prompt, meta.item.seed) == (("a red cube", "a blue cube")[cell.y], (7, 8)[cell.x])
    plain = client.submit(plot.cells[3].request)  # blue at seed 8, alone
    assert client.wait(plain, timeout=120).state == JobState.SUCCEEDED
    assert max_pixel_diff(client.image_png(plain, 0), saved.cell_paths[3].read_bytes()) <= 2


def test_generate_expands_alternatives_and_wildcards_into_the_png_metadata(redis_url, tiny_worker, tmp_path):
    wildcards = tmp_path / "wildcards"
    wildcards.mkdir()
    (wildcards / "shape.txt").write_text("cube\n")
    out = tmp_path / "out"
    result = seedgrid(
        "generate", "a {red|blue} __shape__", "--wildcards", str(wildcards), *SMALL, "--out", str(out),
        redis_url=redis_url,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    prompts = [read_png_metadata(out / name).item.prompt for name in sorted(os.listdir(out))]
    assert prompts == ["a red cube", "a blue cube"]


def test_a_lora_axis_with_a_lora_no_worker_allows_is_refused_before_anything_is_queued(tiny_worker, client):
    base = JobRequest(model="tiny", prompts=["x"], seeds=[0], width=64, height=64, steps=2)
    with pytest.raises(RequestError, match=r"^loras: 'detail' is not allowed by a worker of tiny \(allowed: none"):
        client.submit_plot(make_plot(base, x="lora=detail:1,none"))
    assert client.jobs() == []


def test_cancel_plot_cancels_every_job(client):
    base = JobRequest(model="nobody-serves-this", prompts=["x"], seeds=[0], width=64, height=64, steps=2)
    submitted = client.submit_plot(make_plot(base, x="steps=2,3", y="seed=0,1"), require_worker=False)
    assert len(submitted.job_ids) == 2
    assert [s.state for s in client.cancel_plot(submitted)] == [JobState.CANCELLED] * 2


def test_a_plot_is_kept_in_redis_by_its_id_and_seedgrid_cancel_cancels_it_from_another_client(client, capsys):
    base = JobRequest(model="nobody-serves-this", prompts=["x"], seeds=[0], width=64, height=64, steps=2)
    submitted = client.submit_plot(make_plot(base, x="steps=2,3,4"), require_worker=False)
    assert [client.status(job_id).plot_id for job_id in submitted.job_ids] == [submitted.plot_id] * 3
    assert main(["cancel", submitted.plot_id, "--redis", client.redis_url]) == 0  # another process's view
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"{job_id}: cancelled" for job_id in submitted.job_ids]
    assert main(["cancel", "no-such-plot", "--redis", client.redis_url]) == 1
    assert "nor a plot of that id" in capsys.readouterr().err


def test_ctrl_c_on_plot_cancels_its_jobs(redis_url):
    client_id = f"plot-{uuid.uuid4().hex[:8]}"
    proc = start("plot", "x", *SMALL, *UNSERVED, "--x", "steps=2,3,4", redis_url=redis_url, client_id=client_id)
    assert proc.stderr.readline().endswith(": 3 cells in 3 jobs\n")
    proc.stderr.readline()  # the progress bar: it follows the plot
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert err.strip().endswith("jobs)") and "seedgrid plot: interrupted: cancelled plot " in err
    with SeedgridClient(redis_url, client_id=client_id) as client:
        assert [j.state for j in client.jobs()] == [JobState.CANCELLED] * 3


def test_timeout_writes_plot_json_with_the_jobs_that_go_on(redis_url, client, tmp_path):
    result = seedgrid(
        "plot", "x", *SMALL, *UNSERVED, "--x", "steps=2,3", "--timeout", "0.5", "--out", str(tmp_path),
        redis_url=redis_url,
    )  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("seedgrid plot:")]
    assert "has 0/2 cells after 0.5 s; wrote the cells made so far; its jobs go on (ids in " in line
    doc = json.loads((tmp_path / "plot.json").read_text())
    assert [c["file"] for c in doc["cells"]] == [None, None] and (tmp_path / "plot.png").exists()
    for job in doc["jobs"]:
        assert client.cancel(job["job_id"]).state == JobState.CANCELLED
