"""Submits do not wait behind the app's polls: a submit while Redis stalls is answered in seconds, and one that
fails after its job reached Redis is neither called unsent nor lost. Offscreen, a real Redis (its own: one test
stops it), a stand-in worker; no worker processes."""

import os
import signal
import time
import uuid

import pytest

from seedgrid.client.gui.main_window import MainWindow
from seedgrid.shared import names
from seedgrid.shared.embedded_redis import EmbeddedRedis
from seedgrid.shared.request import JobRequest
from tests.gui_stand_in import registered
from tests.tcp_proxy import FaultyProxy

WAIT = 15_000
MODEL = "fake-stall-model"
# The submitter's probe waits 5 s for a stalled Redis; a poll hung in front of a submit waits 10 s (5 s a reply,
# one retry), and the submit's own worker check as long again after it.
ANSWER_BOUND_S = 8.5


@pytest.fixture
def server():
    with EmbeddedRedis() as s:
        yield s


def request(prompt: str) -> JobRequest:
    return JobRequest(model=MODEL, prompts=[prompt], seeds=[0, 1], scheduler="euler_a", width=64, height=64, steps=4)


def open_window(qtbot, url: str, tmp_path) -> MainWindow:
    win = MainWindow(url, client_id=f"gui-{uuid.uuid4().hex[:8]}", history_dir=tmp_path / "history")
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.connected and MODEL in win.workers.models(), timeout=WAIT)
    return win


def test_a_submit_while_redis_stalls_is_answered_before_the_hung_poll_gives_up(qtbot, server, tmp_path):
    with registered(server.url, MODEL):
        win = open_window(qtbot, server.url, tmp_path)
        try:
            os.kill(server.pid, signal.SIGSTOP)  # connections stay open; no reply comes
            try:
                qtbot.wait(1000)  # a poll every 150 ms: one is hung now
                assert win.connected  # its call has not timed out yet
                rows = win.history.rowCount()
                started = time.monotonic()
                win.submit(request("sent into a stall"))
                qtbot.waitUntil(lambda: not win.sending, timeout=int(ANSWER_BOUND_S * 1000))
                answered_in = time.monotonic() - started
                message = win.statusBar().currentMessage()
            finally:
                os.kill(server.pid, signal.SIGCONT)
            print(f"answered in {answered_in:.1f} s: {message}")
            assert message.startswith("not sent: Redis unreachable") and win.history.rowCount() == rows
        finally:
            win.shutdown()


def test_a_submit_that_fails_after_its_job_reached_redis_is_not_called_unsent_and_is_followed(qtbot, server, tmp_path):
    proxy = FaultyProxy(server.url)
    with registered(server.url, MODEL) as worker:
        win = open_window(qtbot, proxy.url, tmp_path)
        try:
            # The job's record is written, then Redis goes away as the task's message is sent (that one is lost).
            trigger = proxy.break_when(names.TASK_GENERATE, "refuse", seconds=4, to_redis=True)
            win.submit(request("its task message is lost"))
            qtbot.waitUntil(lambda: not win.sending, timeout=30_000)
            assert trigger.fired.is_set()
            message = win.statusBar().currentMessage()
            assert message.startswith("not confirmed: ") and "not sent" not in message

            # Once Redis is back, the app reads this client's jobs again: the job Redis has becomes a grid,
            # followed to its images (a worker sends a lost task again: shared/orphans.py).
            qtbot.waitUntil(lambda: win.history.rowCount() == 1, timeout=30_000)
            grid = win.history.grids[0]
            assert grid.request.prompts == ["its task message is lost"]
            worker.finish(grid.job_id)
            qtbot.waitUntil(lambda: grid.complete, timeout=WAIT)
        finally:
            win.shutdown()
            proxy.close()


def test_a_submit_shows_its_grid_and_its_job_is_followed_to_its_images(qtbot, server, tmp_path):
    with registered(server.url, MODEL) as worker:
        win = open_window(qtbot, server.url, tmp_path)
        try:
            win.submit(request("a quiet harbour"))
            qtbot.waitUntil(lambda: win.current_grid is not None, timeout=WAIT)
            grid = win.current_grid
            assert not win.sending and grid.request.prompts == ["a quiet harbour"]
            worker.finish(grid.job_id)
            qtbot.waitUntil(lambda: grid.complete and grid.status is not None, timeout=WAIT)
            qtbot.waitUntil(lambda: grid.status.state.value == "succeeded", timeout=WAIT)
            assert win.history.rowCount() == 1
        finally:
            win.shutdown()
