"""The app's history across restarts (and its compose panel's bounds and errors, at the end): offscreen,
a real Redis, a stand-in worker writing job records.

Closing the app is `close()` on its window; reopening is a new window on the same history folder."""

import uuid

import pytest
from PySide6.QtCore import QPoint, QSettings, Qt
from PySide6.QtWidgets import QInputDialog, QMessageBox

from seedgrid.client.gui.compose_panel import ComposePanel
from seedgrid.client.gui.grid_model import CellStateRole
from seedgrid.client.gui.history_store import HistoryStore
from seedgrid.client.gui.image_loader import THUMB_SIZE
from seedgrid.client.gui.main_window import MainWindow
from seedgrid.client.gui.settings import HISTORY_CAP_KEY, set_history_cap, settings
from seedgrid.shared import limits as L
from seedgrid.shared import names
from seedgrid.shared.job import JobState, JobStatus
from seedgrid.shared.request import JobRequest
from tests.gui_stand_in import registered, shaded_png

WAIT = 15_000
MODEL = "fake-history-model"


def request(prompt: str, seeds: int = 2) -> JobRequest:
    return JobRequest(model=MODEL, prompts=[prompt], seeds=list(range(seeds)), width=64, height=64, steps=4)


SHADE = 20


def png(req: JobRequest, index: int) -> bytes:
    return shaded_png(req, index, SHADE)


@pytest.fixture
def worker(server):
    with registered(server.url, MODEL, shade=SHADE) as stand_in:
        yield stand_in


@pytest.fixture
def client_id() -> str:
    return f"gui-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def app(qtbot, server, client_id, tmp_path):
    """Opens windows on one history folder and client id; shuts down whatever is left open."""
    opened: list[MainWindow] = []

    def open_window(wait_for_worker: bool = False) -> MainWindow:
        win = MainWindow(server.url, client_id=client_id, history_dir=tmp_path / "history")
        qtbot.addWidget(win)
        win.show()
        opened.append(win)
        qtbot.waitUntil(lambda: win.connected and (not wait_for_worker or MODEL in win.workers.models()), timeout=WAIT)
        return win

    yield open_window
    for win in opened:
        win.shutdown()


def submit(win: MainWindow, qtbot, prompt: str) -> str:
    before = {g.job_id for g in win.history.grids}
    win.compose.load_request(request(prompt))
    win.compose.submit()
    qtbot.waitUntil(lambda: win.current_grid is not None and win.current_grid.job_id not in before, timeout=WAIT)
    return win.current_grid.job_id


def row_state(win: MainWindow, job_id: str) -> str | None:
    rows = [i for i, job in enumerate(win.jobs.jobs) if job.job_id == job_id]
    return win.jobs.data(win.jobs.index(rows[0], win.jobs.columns.index("state"))) if rows else None


def save_grids(store: HistoryStore, count: int, images: int = 2) -> list[str]:
    """`count` finished grids written as the app writes them, oldest first."""
    job_ids = []
    for n in range(count):
        job_id, req = uuid.uuid4().hex, request(f"saved grid {n}", images)
        for index in range(images):
            store.save_image(job_id, req, index, png(req, index))
        store.save_state(job_id, JobStatus(job_id=job_id, state=JobState.SUCCEEDED), "")
        job_ids.append(job_id)
    return job_ids


def test_a_job_running_at_close_is_shown_finished_with_its_images_after_reopening(app, qtbot, worker, client_id):
    win = app(wait_for_worker=True)
    running = submit(win, qtbot, "running when the app closes")
    worker.store.mark_started(running, "stand-in")
    qtbot.waitUntil(lambda: row_state(win, running) == "started", timeout=WAIT)
    win.close()

    # While the app is closed: the job finishes, and another job of this client is queued and finished.
    worker.finish(running)
    elsewhere = uuid.uuid4().hex
    worker.store.create(elsewhere, request("queued from the command line"), client_id)
    worker.finish(elsewhere)

    again = app()
    grid = again.history.find(running)
    assert grid is not None and again.current_grid is grid  # kept while pending, shown as the newest
    qtbot.waitUntil(lambda: grid.complete and grid.loaded and row_state(again, running) == "succeeded", timeout=WAIT)
    assert grid.status.state == JobState.SUCCEEDED and grid.title.endswith("succeeded")
    assert all(not grid.images[i].isNull() and grid.images[i].width() == 64 for i in range(2))
    qtbot.waitUntil(lambda: again.history.find(elsewhere) is not None, timeout=WAIT)
    qtbot.waitUntil(lambda: again.history.find(elsewhere).complete, timeout=WAIT)
    assert sorted(p.name for p in (again.history_store.root / running).glob("*.png")) == [
        "000.png", "001.png", "thumb.png",
    ]  # fmt: skip


def test_finished_grids_reopen_in_their_state_not_queued(app, qtbot, worker):
    win = app(wait_for_worker=True)
    done = submit(win, qtbot, "finished before the close")
    worker.finish(done)
    cancelled = submit(win, qtbot, "cancelled before the close")
    win.cancel_current()
    qtbot.waitUntil(
        lambda: row_state(win, done) == "succeeded" and row_state(win, cancelled) == "cancelled", timeout=WAIT
    )
    qtbot.waitUntil(lambda: win.history.find(done).complete, timeout=WAIT)
    win.close()
    worker.redis.delete(names.job_key(done), names.job_key(cancelled))  # the state must come from the save

    again = app()
    qtbot.wait(500)  # several polls: nothing is followed, so nothing turns "expired"
    assert again.history.find(done).title.endswith("· succeeded") and again.history.find(done).complete
    grid = again.history.find(cancelled)
    assert grid.title.endswith("· cancelled")
    assert {grid.index(0, col).data(CellStateRole) for col in range(2)} == {"cancelled"}


def test_startup_with_a_large_history_decodes_only_the_shown_grid(app, qtbot, tmp_path):
    store = HistoryStore(tmp_path / "history")
    old = uuid.uuid4().hex  # saved by an older version: no state, no thumbnail
    old_request = request("saved before states were", 8)
    for index in range(8):
        store.save_image(old, old_request, index, png(old_request, index))
    (store.root / old / "meta.json").unlink()
    saved = save_grids(store, 30, images=8)

    win = app()
    grids = win.history.grids
    assert len(grids) == 31 and win.current_grid is grids[0] and grids[0].job_id == saved[-1]
    qtbot.waitUntil(lambda: grids[0].loaded and all(g.thumbnail is not None for g in grids), timeout=WAIT)
    assert len(grids[0].images) == 8 and all(len(g.done) == 8 for g in grids)
    assert [g.job_id for g in grids if g.images or g.pngs] == [saved[-1]]  # no other grid decoded
    assert all(g.thumbnail.width() <= THUMB_SIZE and g.thumbnail.height() <= THUMB_SIZE for g in grids)
    legacy = win.history.find(old)
    assert legacy.title.endswith("· saved") and (store.root / old / "thumb.png").exists()

    # Arrow down in the Grids list: the next grid is shown and decoded, the one before lets go.
    win.history_view.setFocus()
    win.history_view.setCurrentIndex(win.history.index(0))
    qtbot.keyClick(win.history_view, Qt.Key.Key_Down)
    assert win.current_grid is grids[1]
    qtbot.waitUntil(lambda: grids[1].loaded, timeout=WAIT)
    assert grids[0].images == {} and grids[0].complete and len(grids[1].images) == 8


def test_delete_and_rename_from_the_grids_list(app, qtbot, tmp_path, worker, client_id, monkeypatch):
    store = HistoryStore(tmp_path / "history")
    first, second, third = save_grids(store, 3)
    for job_id in (first, second, third):  # Redis still has them: a deleted one must not come back from there
        worker.store.create(job_id, request("in redis"), client_id)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("the keeper", True))

    win = app()
    view = win.history_view
    view.setCurrentIndex(win.history.index(1))  # `second`
    assert win.current_grid.job_id == second
    qtbot.keyClick(view, Qt.Key.Key_Delete)
    assert [g.job_id for g in win.history.grids] == [third, first]
    assert not (store.root / second).exists() and win.current_grid is not None
    view.rename_grid(win.history.find(first))
    assert win.history.find(first).title.startswith("the keeper · ")
    win.close()

    again = app()
    qtbot.wait(500)  # the backend has read this client's jobs back from Redis by now
    assert [g.job_id for g in again.history.grids] == [third, first]
    assert again.history.find(first).title.startswith("the keeper · ")


def test_the_cap_drops_the_oldest_grids(app, qtbot, tmp_path, worker, monkeypatch):
    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    store = HistoryStore(tmp_path / "history")
    saved = save_grids(store, 5)
    set_history_cap(3)
    try:
        win = app(wait_for_worker=True)
        assert [g.job_id for g in win.history.grids] == saved[:1:-1]
        assert sorted(f.name for f in store.root.iterdir() if f.is_dir()) == sorted(saved[2:])
        new = submit(win, qtbot, "one more")
        assert [g.job_id for g in win.history.grids] == [new, saved[4], saved[3]]
        assert not (store.root / saved[2]).exists() and (store.root / new).exists()
    finally:
        settings().remove(HISTORY_CAP_KEY)


# The compose panel (issue 11, item 4): bounds from the contract, every error at once, Generate stays put.


def test_spin_boxes_span_exactly_the_contracts_bounds(qtbot):
    c = ComposePanel()
    qtbot.addWidget(c)
    assert (c.steps.minimum(), c.steps.maximum()) == (L.MIN_STEPS, L.MAX_STEPS)
    assert (c.guidance.minimum(), c.guidance.maximum()) == (L.MIN_GUIDANCE, L.MAX_GUIDANCE)
    for box in (c.width_box, c.height_box):
        assert (box.minimum(), box.maximum(), box.singleStep()) == (L.MIN_SIZE, L.MAX_SIZE, L.SIZE_MULTIPLE)
    c.width_box.setValue(8192)
    c.steps.setValue(1000)
    assert (c.width_box.value(), c.steps.value()) == (L.MAX_SIZE, L.MAX_STEPS)


def test_every_field_error_shows_at_once_and_generate_does_not_move(qtbot):
    c = ComposePanel()
    qtbot.addWidget(c)
    c.resize(320, 720)
    c.show()
    qtbot.waitExposed(c)
    before = c.generate_button.mapTo(c, QPoint(0, 0))
    sent: list = []
    c.generate_requested.connect(sent.append)
    c.prompt.setPlainText("")
    c.width_box.setValue(500)
    c.height_box.setValue(100)
    c.seeds.setText("9-3")
    c.submit()
    qtbot.wait(20)  # the layout settles
    shown = {field for field, label in c.errors.items() if label.isVisible()}
    assert shown == {"prompts", "width", "height", "seeds"} and not sent
    assert c.errors["width"].text().startswith("width: ") and c.errors["seeds"].text().startswith("seeds: ")
    assert c.generate_button.mapTo(c, QPoint(0, 0)) == before
