"""The desktop app, offscreen, against a real Redis and a real tiny worker; waits on conditions, never sleeps."""

import uuid

import pytest
from PIL import Image
from PySide6.QtCore import QItemSelectionModel, QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDropEvent

from seedgrid.client.gui.main_window import MainWindow
from seedgrid.shared.job import JobState
from seedgrid.shared.pngmeta import encode_png
from seedgrid.shared.request import JobRequest

WAIT = 90_000


@pytest.fixture
def window(qtbot, redis_url, tiny_worker, tmp_path):
    win = MainWindow(redis_url, client_id=f"gui-{uuid.uuid4().hex[:8]}", history_dir=tmp_path / "history")
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.connected and "tiny" in win.workers.models(), timeout=WAIT)
    yield win
    win.shutdown()


def compose(window, qtbot, prompt: str, seeds: str, steps: int = 4, size: int = 64) -> None:
    c = window.compose
    c.prompt.clear()
    qtbot.keyClicks(c.prompt, prompt)
    c.seeds.setText(seeds)
    c.steps.setValue(steps)
    c.width_box.setValue(size)
    c.height_box.setValue(size)


def test_type_a_prompt_and_click_generate_until_four_cells_fill(window, qtbot, tmp_path):
    compose(window, qtbot, "a lighthouse at dusk", "0-3")
    qtbot.mouseClick(window.compose.generate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.current_grid is not None and window.current_grid.complete, timeout=WAIT)
    grid = window.current_grid
    assert (grid.rowCount(), grid.columnCount()) == (1, 4)
    assert [grid.headerData(c, Qt.Orientation.Horizontal) for c in range(4)] == [f"seed {s}" for s in range(4)]
    assert all(not grid.images[i].isNull() and grid.images[i].width() == 64 for i in range(4))
    qtbot.waitUntil(lambda: grid.status is not None and grid.status.state == JobState.SUCCEEDED, timeout=WAIT)
    assert window.jobs.jobs[0].state == JobState.SUCCEEDED and window.history.rowCount() == 1

    # The grid is kept in the data folder: a new window (an app restart) shows it again.
    window.shutdown()
    again = MainWindow(window.backend.redis_url, window.backend.client_id, history_dir=tmp_path / "history")
    qtbot.addWidget(again)
    try:
        assert again.history.rowCount() == 1 and again.current_grid.job_id == grid.job_id
        assert again.current_grid.complete  # its images are decoded off the GUI thread, once shown
        qtbot.waitUntil(lambda: again.current_grid.loaded, timeout=WAIT)
        assert again.current_grid.pngs == grid.pngs
    finally:
        again.shutdown()


def test_refine_a_cell_into_three_prompt_variations_at_the_pinned_seed(window, qtbot, tmp_path):
    compose(window, qtbot, "portrait photo of a old warrior chief", "0-3")
    window.compose.submit()
    qtbot.waitUntil(lambda: window.current_grid is not None and window.current_grid.complete, timeout=WAIT)
    first = window.current_grid
    window.grid_view.selectionModel().select(first.index(0, 1), QItemSelectionModel.SelectionFlag.ClearAndSelect)
    dialog = window.open_refine_dialog()
    assert dialog.editor.toPlainText() == "portrait photo of a old warrior chief"
    variations = [
        "portrait photo of the oldest warrior chief",
        "portrait photo of a warrior chief",
        "portrait photo of a young warrior chief",
    ]
    dialog.editor.setPlainText("\n".join(variations))
    dialog.accept()
    qtbot.waitUntil(lambda: window.current_grid is not first and window.current_grid.complete, timeout=WAIT)
    refined = window.current_grid
    assert (refined.rowCount(), refined.columnCount()) == (3, 1)
    assert refined.request.seeds == [1] and refined.request.prompts == variations
    assert [refined.headerData(r, Qt.Orientation.Vertical) for r in range(3)] == [
        "…the oldest warrior chief",
        "…a warrior chief",
        "…a young warrior chief",
    ]  # where they differ (the common start cut); the full prompts in the header's tooltip
    assert window.history.rowCount() == 2  # both grids stay reachable
    window.save_grid(tmp_path / "refined.png")
    assert Image.open(tmp_path / "refined.png").height > 3 * 64


def test_cancel_a_running_job(window, qtbot):
    compose(window, qtbot, "a long job", "0-7", steps=150, size=128)
    window.compose.submit()
    qtbot.waitUntil(
        lambda: (
            window.current_grid is not None
            and window.current_grid.status is not None
            and window.current_grid.status.state == JobState.RUNNING
        ),
        timeout=WAIT,
    )
    window.jobs_view.selectRow(0)  # the queue panel: select the job, press its cancel button
    qtbot.mouseClick(window.cancel_job_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.current_grid.status.state == JobState.CANCELLED, timeout=WAIT)
    assert window.current_grid.images == {}
    assert window.jobs.data(window.jobs.index(0, 1)) == "cancelled"


def test_out_of_range_field_is_flagged_before_submit(window, qtbot):
    compose(window, qtbot, "a prompt", "0-3")
    window.compose.width_box.setValue(500)
    qtbot.mouseClick(window.compose.generate_button, Qt.MouseButton.LeftButton)
    error = window.compose.errors["width"]
    assert error.isVisible() and error.text().startswith("width: ") and "multiple of 8 from 64 to 2048" in error.text()
    window.compose.width_box.setValue(64)
    window.compose.seeds.setText("9-3")
    window.compose.submit()
    assert window.compose.errors["seeds"].isVisible() and not window.compose.errors["width"].isVisible()
    assert window.history.rowCount() == 0 and window.jobs.rowCount() == 0


def test_drop_a_png_restores_its_settings(window, qtbot, tmp_path):
    request = JobRequest(
        model="tiny",
        prompts=["a red fox", "a grey wolf"],
        seeds=[7, 99],
        negative_prompt="blurry",
        width=320,
        height=448,
        steps=33,
        guidance=4.5,
        scheduler="euler_a",
    )
    item = request.items()[3]
    path = tmp_path / "fox.png"
    path.write_bytes(encode_png(Image.new("RGB", (320, 448)), request, item))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    drop = QDropEvent(
        QPoint(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier
    )
    window.dropEvent(drop)  # the window's drop handler with a real QDropEvent (offscreen Qt has no drag source)
    assert drop.isAccepted()
    c = window.compose
    assert c.prompt.toPlainText() == "a grey wolf" and c.seeds.text() == "99"
    assert (c.negative.text(), c.width_box.value(), c.height_box.value()) == ("blurry", 320, 448)
    assert (c.steps.value(), c.guidance.value(), c.scheduler_name()) == (33, 4.5, "euler_a")
    assert c.scheduler.currentText() == "Euler a"
    assert c.build_request() == request.model_copy(update={"prompts": ["a grey wolf"], "seeds": [99]})


@pytest.mark.processes
def test_app_keeps_working_after_redis_is_stopped_and_started_again(qtbot, tmp_path):
    from seedgrid.shared.embedded_redis import EmbeddedRedis
    from tests.conftest import WorkerFactory

    data = tmp_path / "redis-data"
    data.mkdir()
    server = EmbeddedRedis(data_dir=str(data), appendonly=True).start()
    port, password = server.port, server.password
    factory = WorkerFactory(server.url, tmp_path)
    win = MainWindow(server.url, client_id="gui-restart", history_dir=tmp_path / "history")
    qtbot.addWidget(win)
    try:
        factory.start(name="restart-worker")
        qtbot.waitUntil(lambda: win.connected and "tiny" in win.workers.models(), timeout=WAIT)
        compose(win, qtbot, "before the outage", "0-1")
        win.compose.submit()
        qtbot.waitUntil(lambda: win.current_grid is not None and win.current_grid.complete, timeout=WAIT)

        server.stop()
        qtbot.waitUntil(lambda: not win.connected, timeout=WAIT)
        assert "unreachable" in win.connection_label.text()
        server = EmbeddedRedis(port=port, password=password, data_dir=str(data), appendonly=True).start()
        qtbot.waitUntil(lambda: win.connected, timeout=WAIT)

        before = win.current_grid
        compose(win, qtbot, "after the outage", "2-3")
        qtbot.waitUntil(lambda: "tiny" in win.workers.models(), timeout=WAIT)
        win.compose.submit()
        qtbot.waitUntil(lambda: win.current_grid is not before and win.current_grid.complete, timeout=WAIT)
        assert win.current_grid.request.prompts == ["after the outage"] and win.history.rowCount() == 2
    finally:
        win.shutdown()
        factory.stop_all()
        server.stop()


def test_connection_url_is_kept_in_the_config_folder(qapp, tmp_path, monkeypatch):
    from PySide6.QtCore import QSettings

    from seedgrid.client.gui.settings import last_redis_url, remember_redis_url

    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert last_redis_url() is None
    remember_redis_url("redis://:secret@example.invalid:6379/0")
    assert last_redis_url() == "redis://:secret@example.invalid:6379/0"
    assert any(tmp_path.rglob("seedgrid*"))


def test_gui_thread_never_touches_the_network_with_ten_jobs_running(window, qtbot, monkeypatch):
    import threading

    from seedgrid.client.api import SeedgridClient

    callers: set[int] = set()
    for name in ("submit", "status", "images", "image_png", "cancel", "workers", "preview"):
        original = getattr(SeedgridClient, name, None)
        if original is None:
            continue

        def recording(self, *args, _original=original, **kwargs):
            callers.add(threading.get_ident())
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(SeedgridClient, name, recording)
    compose(window, qtbot, "ten at once", "0-1", steps=3)
    for _ in range(10):
        window.compose.submit()
    # Images arrive as each batch is stored; a job's final state follows at its next poll.
    qtbot.waitUntil(
        lambda: (
            window.history.rowCount() == 10
            and all(g.complete for g in window.history.grids)
            and all(job.state == JobState.SUCCEEDED for job in window.jobs.jobs)
        ),
        timeout=WAIT * 2,
    )
    assert callers and threading.get_ident() not in callers


def test_previews_arrive_before_the_final_images(window, qtbot):
    compose(window, qtbot, "watch it form", "0-3", steps=60, size=128)
    window.compose.submit()
    qtbot.waitUntil(lambda: window.current_grid is not None and bool(window.current_grid.previews), timeout=WAIT)
    grid = window.current_grid
    assert grid.images == {}  # a preview came first
    preview = next(iter(grid.previews.values()))
    assert not preview.isNull() and preview.width() == 128 // 8
    window.cancel_current()
    qtbot.waitUntil(lambda: grid.status is not None and grid.status.state == JobState.CANCELLED, timeout=WAIT)


def test_ctrl_enter_more_seeds_copy_parameters_and_large_view(window, qtbot):
    from PySide6.QtGui import QGuiApplication

    compose(window, qtbot, "a small boat", "5,6")
    qtbot.keyClick(window.compose.prompt, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.current_grid is not None and window.current_grid.complete, timeout=WAIT)
    first = window.current_grid
    window.grid_view.selectionModel().select(first.index(0, 1), QItemSelectionModel.SelectionFlag.ClearAndSelect)
    window.copy_parameters()
    text = QGuiApplication.clipboard().text()
    assert text.startswith("a small boat\n") and "Seed: 6," in text
    dialog = window.show_image(0, 1)
    assert dialog.parameters.toPlainText() == text

    window.actions_by_name["more_seeds"].trigger()
    qtbot.waitUntil(lambda: window.current_grid is not first and window.current_grid.complete, timeout=WAIT)
    more = window.current_grid
    assert more.request.prompts == ["a small boat"] and len(more.request.seeds) == 2
    assert more.request.seeds != [5, 6] and window.history.rowCount() == 2


def test_a_model_no_worker_serves_is_flagged_at_the_model_field(window, qtbot):
    compose(window, qtbot, "a prompt", "0")
    window.compose.model.setEditText("someone/unserved-model")
    assert window.compose.errors["model"].isVisible()
    assert "no online worker serves 'someone/unserved-model'" in window.compose.errors["model"].text()
    window.compose.submit()  # the backend refuses it too, naming the field; nothing is queued
    qtbot.waitUntil(lambda: "no online worker" in window.compose.errors["model"].text(), timeout=WAIT)
    assert window.history.rowCount() == 0
