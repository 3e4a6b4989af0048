"""Issue 11, items 2, 4 and 5: the queue's truth (position, estimates, prompt), a grid that reads at first sight
(row labels, panels that fit, what is kept across starts) and a cell where work continues (menu, clipboard,
large view). Offscreen, a real Redis, a stand-in worker writing job records through JobStore; no worker
processes."""

import time
import uuid

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QGuiApplication

from seedgrid.client.cli.demo import GUIDE_PROMPT
from seedgrid.client.gui.main_window import MainWindow
from seedgrid.shared import names
from seedgrid.shared.job import JobState
from seedgrid.shared.pngmeta import read_png_metadata
from seedgrid.shared.request import JobRequest
from tests.gui_stand_in import StandInWorker, registered

WAIT = 15_000
MODEL = "fake-work-model"


def request(prompts: list[str], seeds: int = 2) -> JobRequest:
    return JobRequest(model=MODEL, prompts=prompts, seeds=list(range(seeds)), width=64, height=64, steps=4)


@pytest.fixture
def worker(server):
    with registered(server.url, MODEL, ("euler_a", "dpm++_2m"), shade=40) as stand_in:
        yield stand_in


@pytest.fixture
def client_id() -> str:
    return f"gui-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def app(qtbot, server, client_id, tmp_path):
    """Opens windows on one history folder, client id and settings file; shuts down whatever is left open."""
    opened: list[MainWindow] = []

    def open_window(keep_settings: bool = False) -> MainWindow:
        kept = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat) if keep_settings else None
        win = MainWindow(server.url, client_id=client_id, history_dir=tmp_path / "history", settings=kept)
        qtbot.addWidget(win)
        win.show()
        opened.append(win)
        qtbot.waitUntil(lambda: win.connected and MODEL in win.workers.models(), timeout=WAIT)
        return win

    yield open_window
    for win in opened:
        win.shutdown()


def submit(win: MainWindow, qtbot, req: JobRequest) -> str:
    before = {g.job_id for g in win.history.grids}
    win.submit(req)  # as the compose panel, Refine and More seeds send theirs
    qtbot.waitUntil(lambda: win.current_grid is not None and win.current_grid.job_id not in before, timeout=WAIT)
    return win.current_grid.job_id


def cell_text(win: MainWindow, job_id: str, column: str, role=Qt.ItemDataRole.DisplayRole):
    row = next(i for i, job in enumerate(win.jobs.jobs) if job.job_id == job_id)
    return win.jobs.data(win.jobs.index(row, win.jobs.columns.index(column)), role)


def finished_grid(win: MainWindow, qtbot, worker: StandInWorker, prompts: list[str], seeds: int = 3):
    job_id = submit(win, qtbot, request(prompts, seeds))
    worker.finish(job_id)
    grid = win.history.find(job_id)
    qtbot.waitUntil(lambda: grid.complete and grid.loaded, timeout=WAIT)
    return grid


# Item 2: the truth about queued jobs.


def test_queue_rows_show_position_estimates_and_the_prompt(app, qtbot, worker, client_id):
    now = time.time()
    # A finished job of the model: 2 images in 4 s, so one worker makes 0.5 images per second.
    done = uuid.uuid4().hex
    worker.store.create(done, request(["finished earlier"]), client_id)
    worker.store.mark_started(done, "stand-in")
    worker.store.finish(done, JobState.SUCCEEDED)
    worker.redis.hset(names.job_key(done), mapping={"started_at": now - 100, "finished_at": now - 96})
    # Three queued jobs of this client: normal at -30 s, high at -10 s, normal at -20 s.
    long_prompt = "a lighthouse on a cliff in a storm at night, " * 4
    queued = {}
    for name, priority, age in [("first normal", 3, 30), ("high", 0, 10), ("second normal", 3, 20)]:
        job_id = uuid.uuid4().hex
        worker.store.create(job_id, request([f"{name}: {long_prompt}"]), client_id, priority)
        worker.redis.hset(names.job_key(job_id), "submitted_at", now - age)
        queued[name] = job_id

    win = app()
    qtbot.waitUntil(lambda: all(j in win.jobs.estimates for j in queued.values()), timeout=WAIT)
    qtbot.waitUntil(lambda: cell_text(win, queued["high"], "queue").startswith("#1 "), timeout=WAIT)
    # By priority, then by submit time; each of 2 images at 0.5/s takes 4 s after the ones before it.
    for name, position in [("high", 1), ("first normal", 2), ("second normal", 3)]:
        job_id = queued[name]
        estimate = win.jobs.estimates[job_id]
        assert estimate.position == position
        assert estimate.start_at == pytest.approx(now + 4 * (position - 1), abs=3)
        assert estimate.finish_at == pytest.approx(now + 4 * position, abs=3)
        text = cell_text(win, job_id, "queue")
        assert text.startswith(f"#{position} · start in ") and " · done in " in text
        assert cell_text(win, job_id, "prompt") == f"{name}: {long_prompt}"
        assert cell_text(win, job_id, "prompt", Qt.ItemDataRole.ToolTipRole) == f"{name}: {long_prompt}"
    assert win.jobs_view.textElideMode() == Qt.TextElideMode.ElideRight

    # The first starts: it leaves the queue, the others move up.
    worker.store.mark_started(queued["high"], "stand-in")
    qtbot.waitUntil(lambda: win.jobs.estimates[queued["first normal"]].position == 1, timeout=WAIT)
    assert win.jobs.estimates[queued["high"]].position == 0
    assert cell_text(win, queued["second normal"], "queue").startswith("#2 ")


# Item 4: usable at first sight.


def test_row_labels_of_long_prompts_that_differ_at_the_end_differ(app, qtbot, worker):
    base = "a majestic castle on a hill above the sea, dramatic clouds, volumetric light"
    prompts = [f"{base}, golden hour", f"{base}, blue hour", f"{base}, at night in the rain"]
    win = app()
    job_id = submit(win, qtbot, request(prompts))
    grid = win.history.find(job_id)
    labels = [grid.headerData(r, Qt.Orientation.Vertical) for r in range(3)]
    assert labels == ["…, golden hour", "…, blue hour", "…, at night in the rain"]
    tips = [grid.headerData(r, Qt.Orientation.Vertical, Qt.ItemDataRole.ToolTipRole) for r in range(3)]
    assert tips == prompts
    assert grid.index(1, 0).data(Qt.ItemDataRole.ToolTipRole).startswith(prompts[1])


def test_the_default_window_shows_the_guides_eight_seeds_and_whole_queue_columns(app, qtbot, worker):
    win = app()
    assert (win.width(), win.height()) == (1400, 900)
    job_id = submit(win, qtbot, request([GUIDE_PROMPT], seeds=8))
    worker.store.mark_started(job_id, "stand-in")
    qtbot.waitUntil(lambda: cell_text(win, job_id, "worker") == "stand-in", timeout=WAIT)
    qtbot.waitUntil(lambda: cell_text(win, job_id, "elapsed") != "", timeout=WAIT)
    qtbot.wait(50)  # the tables take their new contents' widths

    grid_view = win.grid_view
    columns = grid_view.horizontalHeader()
    assert columns.count() == 8 and columns.length() <= grid_view.viewport().width()  # all 8 seeds, whole
    assert grid_view.verticalHeader().length() <= grid_view.viewport().height()
    for view, model in [(win.jobs_view, win.jobs), (win.workers_view, win.workers)]:
        win.docks["Queue" if view is win.jobs_view else "Workers"].raise_()
        qtbot.waitUntil(lambda: not view.visibleRegion().isEmpty(), timeout=WAIT)
        header = view.horizontalHeader()
        assert header.length() <= view.viewport().width(), f"{model.columns} cut"
        for column in range(len(model.columns) - 1):  # every column as wide as its contents; the last stretches
            assert header.sectionSize(column) >= view.sizeHintForColumn(column), model.columns[column]
    for column in ("state", "progress", "worker", "elapsed"):
        assert not win.jobs_view.isColumnHidden(win.jobs.columns.index(column))


def test_geometry_layout_zoom_and_compose_survive_a_restart(app, qtbot, worker):
    win = app(keep_settings=True)
    assert win.compose.scheduler.findText("Euler a") >= 0  # readable scheduler labels
    win.resize(1200, 800)
    win.zoom.setValue(200)
    win.docks["Workers"].raise_()
    c = win.compose
    c.prompt.setPlainText("kept for the next start")
    c.negative.setText("blurry")
    c.seeds.setText("5-9")
    c.steps.setValue(33)
    c.guidance.setValue(4.5)
    c.width_box.setValue(320)
    c.set_scheduler("dpm++_2m")
    assert c.scheduler.currentText() == "DPM++ 2M" and c.build_request().scheduler == "dpm++_2m"
    values = c.values()
    win.close()

    again = app(keep_settings=True)
    assert (again.width(), again.height()) == (1200, 800)
    assert again.zoom.value() == 200 and again.grid_view.cell_size == 200
    assert again.compose.values() == values
    assert again.compose.scheduler.currentText() == "DPM++ 2M"
    qtbot.waitUntil(lambda: not again.workers_view.visibleRegion().isEmpty(), timeout=WAIT)  # the tab raised
    assert again.jobs_view.visibleRegion().isEmpty()


def test_the_empty_grid_area_says_what_to_do(app, qtbot, worker):
    from seedgrid.client.gui.grid_view import EMPTY_TEXT

    win = app()
    assert win.current_grid is None and "Generate" in EMPTY_TEXT
    shown = win.grid_view.viewport().grab().toImage()
    colours = {shown.pixel(x, y) for x in range(0, shown.width(), 4) for y in range(0, shown.height(), 4)}
    assert len(colours) > 1  # the text is painted


# Item 5: a cell is where work continues.


def test_the_cell_menu_has_its_actions_and_copies_parameters(app, qtbot, worker):
    win = app()
    grid = finished_grid(win, qtbot, worker, ["a red fox in the snow"])
    menu = win.cell_menu(0, 1)
    names_ = [a.objectName() for a in menu.actions() if not a.isSeparator()]
    assert names_ == [
        "use_settings", "refine", "more_like_this", "plot_around", "copy_image", "copy_parameters", "save_image",
        "large_view",
    ]  # fmt: skip
    assert all(a.isEnabled() for a in menu.actions())
    by_name = {a.objectName(): a for a in menu.actions()}
    by_name["copy_parameters"].trigger()
    expected = read_png_metadata(grid.pngs[1]).parameters
    assert QGuiApplication.clipboard().text() == expected and "Seed: 1," in expected

    by_name["use_settings"].trigger()
    assert win.compose.prompt.toPlainText() == "a red fox in the snow" and win.compose.seeds.text() == "1"

    # Dragged out: the PNG file as a URL, and the image.
    mime = grid.mimeData([grid.index(0, 2)])
    assert mime.hasImage() and mime.urls()[0].toLocalFile().endswith("002.png")
    assert open(mime.urls()[0].toLocalFile(), "rb").read() == grid.pngs[2]

    by_name["more_like_this"].trigger()
    qtbot.waitUntil(lambda: win.current_grid is not grid, timeout=WAIT)
    assert win.current_grid.request.prompts == ["a red fox in the snow"] and len(win.current_grid.request.seeds) >= 3


def test_ctrl_c_copies_the_image(app, qtbot, worker):
    win = app()
    finished_grid(win, qtbot, worker, ["a grey wolf"])
    QGuiApplication.clipboard().clear()
    win.grid_view.setFocus()
    win.grid_view.select_cell(0, 2)
    qtbot.keyClick(win.grid_view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    image = QGuiApplication.clipboard().image()
    assert not image.isNull() and (image.width(), image.height()) == (64, 64)
    assert image.pixelColor(10, 10).red() == 2 * 40


def test_enter_opens_the_large_view_and_next_previous_move(app, qtbot, worker):
    win = app()
    grid = finished_grid(win, qtbot, worker, ["a small boat", "a small boat at sea"], seeds=2)
    win.grid_view.setFocus()
    win.grid_view.select_cell(0, 1)
    qtbot.keyClick(win.grid_view, Qt.Key.Key_Return)
    dialog = win.image_dialog
    assert dialog is not None and dialog.isVisible() and dialog.index == 1
    assert "Seed: 1," in dialog.parameters.toPlainText() and dialog.fit_button.isChecked()
    qtbot.waitExposed(dialog)
    qtbot.keyClick(dialog, Qt.Key.Key_Right)
    assert dialog.index == 2 and dialog.parameters.toPlainText().startswith("a small boat at sea\n")
    assert dialog.parameters.toPlainText() == read_png_metadata(grid.pngs[2]).parameters
    qtbot.keyClick(dialog, Qt.Key.Key_Left)
    qtbot.keyClick(dialog, Qt.Key.Key_Left)
    assert dialog.index == 0 and "Seed: 0," in dialog.parameters.toPlainText()
    assert not dialog.previous_button.isEnabled()
    # Fit to window: the picture fills the view; off, it is at its own size.
    fitted = dialog.picture.pixmap().width()
    assert fitted > 64
    dialog.fit_button.setChecked(False)
    assert dialog.picture.pixmap().width() == 64
    dialog.close()
