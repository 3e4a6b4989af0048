"""The `seedgrid` command as a user types it: alone on one machine, and against a running system."""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from seedgrid.shared.pngmeta import read_png_metadata
from seedgrid.shared.request import JobRequest

# Every test here starts worker, Redis or CLI processes.
pytestmark = pytest.mark.processes

SEEDGRID = [sys.executable, "-m", "seedgrid.client.cli.main"]
INSTALLED_SEEDGRID = Path(sys.executable).with_name("seedgrid")  # the console script pip wrote


def seedgrid(*args: str, redis_url: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return seedgrid_tracked(*args, redis_url=redis_url, timeout=timeout)[0]


def seedgrid_tracked(
    *args: str, redis_url: str | None = None, timeout: float = 300, cwd: Path | None = None
) -> tuple[subprocess.CompletedProcess, set[int]]:
    """Run `seedgrid`; also return the pids of every process it started (a private Redis, a worker)."""
    env = {k: v for k, v in os.environ.items() if k != "SEEDGRID_REDIS_URL"}
    if redis_url:
        env["SEEDGRID_REDIS_URL"] = redis_url
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        command = [str(INSTALLED_SEEDGRID)] if cwd else SEEDGRID
        proc = subprocess.Popen([*command, *args], stdout=out, stderr=err, text=True, env=env, cwd=cwd)
        parent, children, deadline = psutil.Process(proc.pid), set(), time.monotonic() + timeout
        while proc.poll() is None:
            try:
                children |= {c.pid for c in parent.children(recursive=True)}
            except psutil.NoSuchProcess:
                pass
            if time.monotonic() > deadline:
                proc.kill()
                raise TimeoutError(f"seedgrid {' '.join(args)} ran over {timeout} s")
            time.sleep(0.1)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), err.read()), children


def still_running(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.add(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def test_generate_alone_starts_private_redis_and_worker_and_leaves_nothing_running(tmp_path):
    # A user's own files named like seedgrid's parts, in the folder the command runs from.
    workdir = tmp_path / "project"
    workdir.mkdir()
    for name in ("worker", "client", "shared", "seedgrid"):
        (workdir / f"{name}.py").write_text("raise SystemExit('a file of the user was imported')\n")
    result, started = seedgrid_tracked(
        "generate",
        "a lighthouse at dusk",
        "--prompt",
        "a lighthouse at dawn",
        "--seeds",
        "3,17",
        "--steps",
        "6",
        "--width",
        "64",
        "--height",
        "96",
        "--scheduler",
        "euler",
        "--out",
        str(tmp_path),
        "--grid",
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr
    assert "started a private one" in result.stderr and "succeeded" in result.stderr
    pngs = sorted(p for p in tmp_path.glob("*.png") if p.name != "grid.png")
    assert len(pngs) == 4 and (tmp_path / "grid.png").exists()
    meta = read_png_metadata(pngs[3])
    assert meta.request == JobRequest(
        prompts=["a lighthouse at dusk", "a lighthouse at dawn"],
        seeds=[3, 17],
        steps=6,
        width=64,
        height=96,
        scheduler="euler",
    )
    assert (meta.item.prompt, meta.item.seed) == ("a lighthouse at dawn", 17)
    assert len(started) >= 2 and still_running(started) == set()  # a private Redis and a worker, both gone


def test_bad_option_is_refused_before_anything_starts(tmp_path):
    for args, option in [
        (["--width", "500"], "--width"),
        (["--seeds", "5-2"], "--seeds"),
        (["--steps", "999"], "--steps"),
        (["--scheduler", "fast"], "--scheduler"),
        (["--seeds", "random:0"], "--seeds"),
        (["--guidance", "99"], "--guidance"),
    ]:
        result = seedgrid("generate", "a prompt", *args, "--out", str(tmp_path), timeout=60)
        assert result.returncode == 2, (args, result.stderr)
        assert f"seedgrid generate: {option}: " in result.stderr and "allowed:" in result.stderr
        assert "private" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_help_lists_subcommands_and_options():
    result = seedgrid("generate", "--help", timeout=60)
    for option in (
        "--seeds",
        "--prompt",
        "--steps",
        "--scheduler",
        "--width",
        "--height",
        "--guidance",
        "--negative",
        "--model",
        "--out",
        "--grid",
    ):
        assert option in result.stdout
    assert "random:8" in result.stdout


def test_workers_jobs_and_cancel_against_a_running_system(redis_url, tiny_worker, tmp_path):
    workers = seedgrid("workers", redis_url=redis_url, timeout=60)
    assert workers.returncode == 0 and tiny_worker.name in workers.stdout and " tiny " in workers.stdout
    assert "cpu " in workers.stdout and " GB " in workers.stdout and "batch<=8" in workers.stdout
    env_client = {"SEEDGRID_CLIENT_ID": "cli-test"}
    os.environ.update(env_client)
    try:
        gen = seedgrid(
            "generate",
            "a quick one",
            "--steps",
            "2",
            "--width",
            "64",
            "--height",
            "64",
            "--out",
            str(tmp_path),
            redis_url=redis_url,
            timeout=120,
        )
        assert gen.returncode == 0, gen.stderr
        jobs = seedgrid("jobs", redis_url=redis_url, timeout=60)
        assert "succeeded" in jobs.stdout and "a quick one" in jobs.stdout
        job_id = jobs.stdout.splitlines()[1].split()[0]  # below the header row
        cancel = seedgrid("cancel", job_id, redis_url=redis_url, timeout=60)
        assert cancel.returncode == 0 and "succeeded" in cancel.stdout  # a finished job stays as it was
        unknown = seedgrid("cancel", "nosuchjob", redis_url=redis_url, timeout=60)
        assert unknown.returncode == 1 and "no job nosuchjob" in unknown.stderr
    finally:
        os.environ.pop("SEEDGRID_CLIENT_ID")


def test_demo_runs_the_guide_workflow_and_leaves_nothing_running(tmp_path):
    result, started = seedgrid_tracked("demo", "--out", str(tmp_path), timeout=600)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "grid.png").exists() and (tmp_path / "refine.png").exists()
    assert len(list(tmp_path.glob("batch-*.png"))) == 8 and len(list(tmp_path.glob("refine-*.png"))) == 4
    for label, images in (("batch", 8), ("refine", 4)):
        assert f"{label}: succeeded, {images} images, queued " in result.stdout
    assert "generating" in result.stdout and "fetching" in result.stdout
    refine = read_png_metadata(tmp_path / "refine-001-seed1.png")
    assert refine.item.seed == 1 and refine.item.prompt.startswith("portrait photo of a old warrior chief, tribal")
    assert refine.request.steps == 25
    assert len(started) >= 2 and still_running(started) == set()
