"""The `seedgrid` command when something is wrong: one line on stderr naming what failed and what to
do, a non-zero exit, the traceback only with --debug; Ctrl+C cancels the job it follows; --timeout
and --detach leave the job to `seedgrid fetch`; a reader that closes the pipe early is no error."""

import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest

from seedgrid.client.api import SeedgridClient
from seedgrid.client.cli.errors import describe
from seedgrid.shared.job import JobState
from seedgrid.shared.pngmeta import read_png_metadata
from seedgrid.shared.request import JobRequest
from tests.helpers import default_sigint, wait_until
from tests.test_tls import make_certificates

# Every test here starts worker, Redis or CLI processes.
pytestmark = pytest.mark.processes

SEEDGRID = [sys.executable, "-m", "seedgrid.client.cli.main"]
SMALL = ["--width", "64", "--height", "64", "--steps", "2"]
UNSERVED = ["--model", "nobody-serves-this", "--queue-anyway"]  # queued, and stays queued


def start(
    *args: str, redis_url: str | None = None, client_id: str | None = None, env: dict | None = None, **popen
) -> subprocess.Popen:

    env = {
        k: v for k, v in {**os.environ, **(env or {})}.items() if k not in ("SEEDGRID_REDIS_URL", "SEEDGRID_REDIS_CA")
    }
    env.update({"SEEDGRID_REDIS_URL": redis_url} if redis_url else {})
    env.update({"SEEDGRID_CLIENT_ID": client_id} if client_id else {})
    popen.setdefault("stdout", subprocess.PIPE)
    popen.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen([*SEEDGRID, *args], text=True, env=env, preexec_fn=default_sigint, **popen)


def finish(proc: subprocess.Popen, timeout: float = 60) -> subprocess.CompletedProcess:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def seedgrid(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return finish(start(*args, **kwargs))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f":{password}@{parts.hostname}:{parts.port}"))


def test_redis_problems_are_one_line_in_every_command(redis_url, tmp_path):
    host = urlsplit(redis_url)
    wrong = with_password(redis_url, "not-the-password")
    down_port = closed_port()
    down = f"redis://:pw@127.0.0.1:{down_port}/0"
    refused = f"Redis at 127.0.0.1:{host.port} refused the password"
    unreachable = f"cannot reach Redis at 127.0.0.1:{down_port}: Connection refused"
    cases = [  # (args, URL in SEEDGRID_REDIS_URL, the line expected)
        (["jobs"], wrong, f"seedgrid jobs: {refused} (check SEEDGRID_REDIS_URL)"),
        (["generate", "x", *SMALL, "--redis", wrong], None, f"seedgrid generate: {refused} (check --redis)"),
        (["workers"], down, f"seedgrid workers: {unreachable} (is Redis running there? check SEEDGRID_REDIS_URL)"),
        (["cancel", "abc"], down, f"seedgrid cancel: {unreachable}"),
        (["fetch", "abc", "--out", str(tmp_path)], down, f"seedgrid fetch: {unreachable}"),
        (["demo", "--out", str(tmp_path)], down, f"seedgrid demo: {unreachable}"),
        (["generate", "x", *SMALL], down, f"seedgrid generate: {unreachable}"),
    ]
    started = time.monotonic()
    procs = [start(*args, redis_url=url) for args, url, _ in cases]  # side by side: the file stays fast
    debug = finish(start("--debug", "jobs", redis_url=wrong))
    results = [finish(p) for p in procs]
    assert time.monotonic() - started < 45  # nothing waits on a Redis that cannot answer
    for (args, _, line), result in zip(cases, results, strict=True):
        assert result.returncode == 1, (args, result.stderr)
        assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(line), (args, result.stderr)
    assert list(tmp_path.iterdir()) == []
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr
    assert "redis.exceptions.AuthenticationError" in debug.stderr
    assert debug.stderr.splitlines()[-1] == f"seedgrid jobs: {refused} (check SEEDGRID_REDIS_URL)"


def test_sending_a_task_to_a_redis_that_is_down_fails_within_seconds():
    url = f"redis://:pw@127.0.0.1:{closed_port()}/0"
    started = time.monotonic()
    with SeedgridClient(url) as client, pytest.raises(Exception) as failure:
        client.celery.send_task("seedgrid.nothing", queue="nowhere")  # what submit does after writing the job
    assert time.monotonic() - started < 5
    problem = describe(failure.value, url)
    assert problem and problem.message.startswith(f"cannot reach Redis at 127.0.0.1:{urlsplit(url).port}: Connection")


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs openssl on PATH")
def test_a_tls_server_with_an_unknown_certificate_is_one_line(tmp_path):
    make_certificates(tmp_path)  # a server certificate signed by a CA this client does not know
    port = closed_port()
    server = subprocess.Popen(
        ["openssl", "s_server", "-quiet", "-accept", str(port), "-cert", "server.pem", "-key", "server.key"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, 10, message="openssl s_server")
        result = seedgrid("jobs", redis_url=f"rediss://:pw@127.0.0.1:{port}/0")
    finally:
        server.kill()
        server.wait()
    assert result.returncode == 1 and len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"seedgrid jobs: TLS with Redis at 127.0.0.1:{port} failed: its certificate")
    assert "SEEDGRID_REDIS_CA" in result.stderr


def test_worker_with_a_wrong_password_is_refused_before_loading(redis_url):
    result = seedgrid("worker", "--model", "tiny", "--redis", with_password(redis_url, "not-the-password"))
    assert result.returncode == 2, result.stderr
    # One line: nothing was loaded (no "loading tiny" log line) and no traceback.
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("seedgrid worker: Redis refused the password"), result.stderr


def test_worker_on_cuda_without_cuda_is_refused_before_loading(redis_url):
    if importlib.util.find_spec("torch") is None:
        pytest.skip("needs seedgrid[worker]")
    # No GPU visible: a CUDA build of torch is refused too, for its own reason.
    result = seedgrid("worker", "--device", "cuda", "--redis", redis_url, env={"CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("seedgrid worker: --device cuda: ")
    assert "this torch has no CUDA support" in result.stderr or "no CUDA GPU is usable" in result.stderr
    assert "use --device cpu" in result.stderr


def test_generate_with_its_own_worker_on_cuda_without_cuda_says_why_it_could_not_start(tmp_path):
    # No Redis configured: generate starts a private Redis and a local worker, which refuses --device cuda.
    result = seedgrid(
        "generate", "x", *SMALL, "--device", "cuda", "--out", str(tmp_path), env={"CUDA_VISIBLE_DEVICES": ""}
    )
    assert result.returncode == 1, result.stderr
    line = [line for line in result.stderr.splitlines() if line.startswith("seedgrid generate:")]
    assert len(line) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "exited before it came online: --device cuda: " in line[0], line
    assert "this torch has no CUDA support" in line[0] or "no CUDA GPU is usable" in line[0]


def test_ctrl_c_on_generate_cancels_the_job(redis_url, tmp_path):
    proc = start("generate", "interrupted", *SMALL, *UNSERVED, "--out", str(tmp_path), redis_url=redis_url)
    first = proc.stderr.readline()  # the progress bar: the command is following the job
    match = re.match(r"job ([0-9a-f]{8}) ", first)
    assert match, first + finish(proc).stderr
    proc.send_signal(signal.SIGINT)
    result = finish(proc)
    assert result.returncode == 130, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("seedgrid")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    job_id = lines[0].removeprefix("seedgrid generate: interrupted: cancelled job ")
    assert job_id.startswith(match.group(1)), lines
    with SeedgridClient(redis_url) as client:
        assert client.status(job_id).state == JobState.CANCELLED


def test_timeout_leaves_the_job_queued_and_says_how_to_fetch_it(redis_url, tmp_path):
    result = seedgrid(
        "generate",
        "patience",
        *SMALL,
        *UNSERVED,
        "--timeout",
        "0.5",
        "--out",
        str(tmp_path),
        "--grid",
        redis_url=redis_url,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("seedgrid")]
    match = re.fullmatch(
        r"seedgrid generate: job (\w+) still queued after 0.5 s; it goes on: "
        rf"seedgrid fetch (\w+) --out {re.escape(str(tmp_path))} --grid once it has finished",
        line,
    )
    assert match and match.group(1) == match.group(2), line
    job_id = match.group(1)
    fetch = seedgrid("fetch", job_id, "--out", str(tmp_path), redis_url=redis_url)
    assert fetch.returncode == 1, fetch.stderr
    assert fetch.stderr == f"seedgrid fetch: job {job_id} is queued; try again once it has finished\n"
    with SeedgridClient(redis_url) as client:
        assert client.status(job_id).state == JobState.QUEUED
        client.cancel(job_id)


def test_detach_then_fetch_writes_the_images_and_lists_show_headers(redis_url, tiny_worker, tmp_path):
    client_id = f"detach-{uuid.uuid4().hex[:8]}"
    alone = seedgrid("generate", "x", "--detach", *SMALL)  # no Redis: a private one would stop at exit
    assert alone.returncode == 2 and alone.stderr.startswith("seedgrid generate: --detach needs a shared Redis")
    out = tmp_path / "later"
    gen = seedgrid(
        "generate", "a detached lighthouse", "--seeds", "0,1", *SMALL, "--detach", "--out", str(out), "--grid",
        redis_url=redis_url, client_id=client_id,
    )  # fmt: skip
    assert gen.returncode == 0, gen.stderr
    job_id = gen.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{32}", job_id) and f"seedgrid fetch {job_id} --out {out} --grid" in gen.stderr
    assert not out.exists()  # it did not wait
    with SeedgridClient(redis_url) as client:
        assert client.wait(job_id, timeout=120).state == JobState.SUCCEEDED
    fetch = seedgrid("fetch", job_id, "--out", str(out), "--grid", redis_url=redis_url)
    assert fetch.returncode == 0, fetch.stderr
    names = [f"{job_id[:8]}-000-seed0.png", f"{job_id[:8]}-001-seed1.png", "grid.png"]  # as generate names them
    assert fetch.stdout.split() == [str(out / name) for name in names]
    assert read_png_metadata(out / names[1]).item.seed == 1
    unknown = seedgrid("fetch", "nosuchjob", "--out", str(out), redis_url=redis_url)
    assert unknown.returncode == 1 and unknown.stderr == "seedgrid fetch: no job nosuchjob (unknown, or expired)\n"

    jobs = seedgrid("jobs", redis_url=redis_url, client_id=client_id).stdout.splitlines()
    assert jobs[0].split() == ["JOB", "STATE", "DONE", "IMAGES", "WORKER", "PROMPT"]
    assert jobs[1].split()[:4] == [job_id, "succeeded", "100%", "2/2"] and len(jobs) == 2
    workers = seedgrid("workers", redis_url=redis_url).stdout.splitlines()
    assert workers[0].split() == ["NAME", "HOST", "DEVICE", "MODEL", "BATCH", "STATE", "JOBS", "DONE"]
    assert any(line.startswith(tiny_worker.name) for line in workers[1:])


def test_jobs_into_a_closed_pipe_is_quiet(redis_url):
    client_id = f"pipe-{uuid.uuid4().hex[:8]}"
    with SeedgridClient(redis_url, client_id=client_id) as client:
        job_id = client.submit(JobRequest(model="nobody-serves-this", prompts=["x"], seeds=[0]), require_worker=False)
        client.cancel(job_id)
    proc = start("jobs", redis_url=redis_url, client_id=client_id)
    proc.stdout.close()  # like `seedgrid jobs | head -0`: the reader is gone before the first line
    err = proc.stderr.read()
    proc.wait(60)
    assert err == "" and proc.returncode == 1  # 1, as Python's recipe for SIGPIPE exits
