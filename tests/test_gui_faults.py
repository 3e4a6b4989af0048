"""The desktop app when Redis or a job's record fails it: offscreen, a real Redis, no worker processes.

A stand-in worker registers a heartbeat and writes job records through JobStore, as a worker does."""

import uuid

import pytest
from PySide6.QtCore import QSettings

from seedgrid.client.gui.app import remember_when_connected
from seedgrid.client.gui.grid_model import CellStateRole
from seedgrid.client.gui.main_window import MainWindow
from seedgrid.client.gui.settings import REDIS_URL_KEY, last_redis_url, settings
from seedgrid.shared import names
from seedgrid.shared.embedded_redis import EmbeddedRedis
from tests.gui_stand_in import StandInWorker

WAIT = 15_000
MODEL = "fake-gui-model"


@pytest.fixture
def stand_in(server):
    worker = StandInWorker(server.url, MODEL)
    worker.register()
    yield worker
    worker.redis.close()


def open_window(qtbot, url: str, tmp_path) -> MainWindow:
    win = MainWindow(url, client_id=f"gui-{uuid.uuid4().hex[:8]}", history_dir=tmp_path / "history")
    qtbot.addWidget(win)
    win.show()
    return win


@pytest.fixture
def win(qtbot, server, stand_in, tmp_path):
    win = open_window(qtbot, server.url, tmp_path)
    qtbot.waitUntil(lambda: win.connected and MODEL in win.workers.models(), timeout=WAIT)
    yield win
    win.shutdown()


def submit(win: MainWindow, qtbot, prompt: str) -> str:
    """Submit a one-row, two-seed job through the compose panel; returns its id once the app shows it."""
    before = win.history.rowCount()
    c = win.compose
    c.prompt.setPlainText(prompt)
    c.seeds.setText("0,1")
    c.steps.setValue(4)
    c.width_box.setValue(64)
    c.height_box.setValue(64)
    c.model.setEditText(MODEL)
    c.submit()
    qtbot.waitUntil(lambda: win.history.rowCount() == before + 1, timeout=WAIT)
    return win.current_grid.job_id


def row_state(win: MainWindow, job_id: str) -> str:
    row = next(i for i, job in enumerate(win.jobs.jobs) if job.job_id == job_id)
    return win.jobs.data(win.jobs.index(row, win.jobs.columns.index("state")))


def cell_states(win: MainWindow, job_id: str) -> set:
    grid = win.history.find(job_id)
    return {grid.index(0, col).data(CellStateRole) for col in range(grid.columnCount())}


def test_a_deleted_and_a_malformed_job_fail_alone_while_the_others_update(win, qtbot, stand_in):
    deleted = submit(win, qtbot, "deleted from redis")
    malformed = submit(win, qtbot, "malformed record")
    healthy = submit(win, qtbot, "still followed")
    stand_in.redis.delete(names.job_key(deleted))
    stand_in.redis.hset(names.job_key(malformed), "request", "{not json")
    stand_in.finish(healthy)

    qtbot.waitUntil(lambda: win.history.find(healthy).complete, timeout=WAIT)
    qtbot.waitUntil(lambda: row_state(win, healthy) == "succeeded", timeout=WAIT)
    qtbot.waitUntil(lambda: row_state(win, deleted) == "expired", timeout=WAIT)
    qtbot.waitUntil(lambda: row_state(win, malformed) == "lost", timeout=WAIT)
    assert cell_states(win, deleted) == {"expired"} and cell_states(win, malformed) == {"lost"}
    assert cell_states(win, healthy) == {None} and win.connected
    assert "expired" in win.history.find(deleted).title


def test_redis_restarted_without_its_data_does_not_wedge_the_app(qtbot, tmp_path):
    server = EmbeddedRedis().start()
    port, password = server.port, server.password
    worker = StandInWorker(server.url, MODEL)
    worker.register()
    win = open_window(qtbot, server.url, tmp_path)
    try:
        qtbot.waitUntil(lambda: win.connected and MODEL in win.workers.models(), timeout=WAIT)
        shown = submit(win, qtbot, "before the restart")

        server.stop()
        qtbot.waitUntil(lambda: not win.connected, timeout=WAIT)
        assert "unreachable" in win.connection_label.text()
        server = EmbeddedRedis(port=port, password=password).start()  # a new, empty data folder
        qtbot.waitUntil(lambda: win.connected, timeout=WAIT)
        qtbot.waitUntil(lambda: row_state(win, shown) == "expired", timeout=WAIT)
        assert win.connection_label.text() == "connected"

        worker.register()
        qtbot.waitUntil(lambda: MODEL in win.workers.models(), timeout=WAIT)
        after = submit(win, qtbot, "after the restart")
        worker.finish(after)
        qtbot.waitUntil(lambda: win.history.find(after).complete, timeout=WAIT)
        qtbot.waitUntil(lambda: row_state(win, after) == "succeeded", timeout=WAIT)
        assert cell_states(win, shown) == {"expired"}
    finally:
        win.shutdown()
        worker.redis.close()
        server.stop()


def test_a_wrong_password_is_shown_as_refused_and_not_remembered(qtbot, server, tmp_path, monkeypatch):
    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    settings().remove(REDIS_URL_KEY)
    wrong = server.url.replace(server.password, "not-the-password")
    assert wrong != server.url
    win = open_window(qtbot, wrong, tmp_path)
    remember_when_connected(win, wrong)
    try:
        qtbot.waitUntil(lambda: "password" in win.connection_label.text(), timeout=WAIT)
        qtbot.wait(1000)  # many polls later, with no job to follow: still refused, never "connected"
        assert not win.connected and "refused" in win.connection_label.text()
        assert last_redis_url() is None
    finally:
        win.shutdown()

    right = open_window(qtbot, server.url, tmp_path)
    remember_when_connected(right, server.url)
    try:
        qtbot.waitUntil(lambda: right.connected, timeout=WAIT)
        assert last_redis_url() == server.url
    finally:
        right.shutdown()


def test_a_lost_workers_job_says_so_until_another_worker_runs_it(win, qtbot, stand_in):
    job_id = submit(win, qtbot, "its worker dies")
    stand_in.store.mark_started(job_id, "doomed")
    qtbot.waitUntil(lambda: row_state(win, job_id) == "started", timeout=WAIT)
    # What a live worker's lease keeper writes when it takes over a dead worker's job.
    stand_in.redis.hset(names.job_key(job_id), mapping={"state": "queued", "lost_worker": "doomed", "worker": ""})
    qtbot.waitUntil(lambda: row_state(win, job_id) == "worker lost, waiting for another", timeout=WAIT)
    stand_in.finish(job_id)
    qtbot.waitUntil(lambda: row_state(win, job_id) == "succeeded", timeout=WAIT)


def test_cancelled_cells_are_marked_cancelled(win, qtbot):
    job_id = submit(win, qtbot, "never mind")
    win.cancel_current()
    qtbot.waitUntil(lambda: row_state(win, job_id) == "cancelled", timeout=WAIT)
    assert cell_states(win, job_id) == {"cancelled"}


def test_a_submit_during_a_redis_stall_says_sending_until_redis_answers(stand_in, qtbot, server, tmp_path):
    from tests.tcp_proxy import FaultyProxy

    proxy = FaultyProxy(server.url)
    stalled = open_window(qtbot, proxy.url, tmp_path / "stalled")
    try:
        qtbot.waitUntil(lambda: stalled.connected and MODEL in stalled.workers.models(), timeout=WAIT)
        proxy.partition()  # every byte dropped, connections left open: calls hang until their timeouts
        rows = stalled.history.rowCount()
        stalled.compose.prompt.setPlainText("sent into a stall")
        stalled.compose.submit()
        notice = stalled.statusBar().currentMessage()
        assert notice.startswith(("sending", "submitting"))  # at once
        qtbot.wait(3000)  # past any short-lived notice: still says what it is doing
        assert stalled.statusBar().currentMessage() == notice and stalled.history.rowCount() == rows
        proxy.heal()
        qtbot.waitUntil(lambda: not stalled.sending, timeout=60_000)
        assert stalled.statusBar().currentMessage() != "sending…"
    finally:
        stalled.shutdown()
        proxy.close()
