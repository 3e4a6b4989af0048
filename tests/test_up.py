"""`seedgrid up`: Ctrl+C closes the app and stops everything it started; a local worker that dies is started again."""

import os
import signal
import subprocess
import sys
import tempfile
import time

import psutil
import pytest

pytestmark = pytest.mark.processes

SEEDGRID = [sys.executable, "-m", "seedgrid.client.cli.main"]


def workers_of(parent: psutil.Process) -> list[psutil.Process]:
    found = []
    for child in parent.children(recursive=True):
        try:
            if "seedgrid.worker" in " ".join(child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE:
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_up_restarts_a_dead_worker_and_stops_everything_on_ctrl_c():
    env = {k: v for k, v in os.environ.items() if k != "SEEDGRID_REDIS_URL"} | {"QT_QPA_PLATFORM": "offscreen"}
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([*SEEDGRID, "up", "--model", "simulated"], stderr=err, text=True, env=env)
        try:
            parent = psutil.Process(proc.pid)
            first = wait_for(lambda: workers_of(parent), 60, "the local worker")[0]
            started = {p.pid for p in parent.children(recursive=True)}  # the private Redis and the worker
            first.kill()  # as an out-of-memory kill would
            try:
                second = wait_for(lambda: [w for w in workers_of(parent) if w.pid != first.pid], 30, "a new worker")[0]
            except AssertionError:
                err.seek(0)
                raise AssertionError(f"no new worker; seedgrid up said:\n{err.read()[-3000:]}") from None
            started |= {p.pid for p in parent.children(recursive=True)}
            proc.send_signal(signal.SIGINT)
            assert proc.wait(30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
        err.seek(0)
        output = err.read()
    assert "the local worker exited" in output and "starting it again" in output, output
    assert "Traceback" not in output, output
    assert [pid for pid in started | {second.pid} if running(pid)] == [], output


def running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
