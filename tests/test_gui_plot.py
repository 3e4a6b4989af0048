"""Issue 14 item 4: the app's plot mode, its plots kept across restarts. Offscreen, a real Redis, the stand-in worker
writing job records through JobStore (no worker processes)."""

import uuid

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from seedgrid.client.gui.history_keeper import HistoryKeeper
from seedgrid.client.gui.history_model import HistoryModel
from seedgrid.client.gui.history_store import HistoryStore
from seedgrid.client.gui.main_window import MainWindow
from seedgrid.client.gui.plot_grid import PlotGridModel
from seedgrid.client.gui.plot_tracker import PlotTracker
from seedgrid.client.plots import SubmittedPlot
from seedgrid.shared.plot import make_plot
from seedgrid.shared.pngmeta import read_png_metadata
from seedgrid.shared.request import JobRequest
from tests.gui_stand_in import registered

WAIT = 15_000
MODEL = "fake-plot-model"


@pytest.fixture
def worker(server):
    with registered(server.url, MODEL, ("euler_a", "dpm++_2m"), shade=40) as stand_in:
        yield stand_in


def open_window(qtbot, url: str, client_id: str, history_dir) -> MainWindow:
    win = MainWindow(url, client_id=client_id, history_dir=history_dir)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.connected and MODEL in win.workers.models(), timeout=WAIT)
    return win


@pytest.fixture
def win(qtbot, server, worker, tmp_path):
    win = MainWindow(server.url, client_id=f"gui-{uuid.uuid4().hex[:8]}", history_dir=tmp_path / "history")
    qtbot.addWidget(win)
    win.show()
    try:
        qtbot.waitUntil(lambda: win.connected and MODEL in win.workers.models(), timeout=WAIT)
        c = win.compose
        c.model.setEditText(MODEL)
        c.prompt.setPlainText("a red fox in the snow")
        c.width_box.setValue(64)
        c.height_box.setValue(64)
        c.plot.set_mode(True)
        yield win
    finally:
        win.shutdown()


def test_the_cell_count_follows_the_typing_and_errors_keep_the_layout_still(win, qtbot):
    plot = win.compose.plot
    x, y = plot.rows["x"], plot.rows["y"]
    assert (x.setting_name(), y.setting_name()) == ("steps", "seed")
    assert plot.count.text() == "type the values of at least one axis"
    qtbot.keyClicks(x.values, "10-40:10")
    assert plot.count.text() == "4 cells"
    qtbot.keyClicks(y.values, "1,2")
    assert plot.count.text() == "8 cells"
    button_at = plot.generate_button.mapTo(win, plot.generate_button.rect().topLeft())
    y_at = y.values.mapTo(win, y.values.rect().topLeft())

    qtbot.keyClicks(x.values, ",x")
    assert x.error.text().startswith("x steps: 'x' is not an integer") and y.error.text() == ""
    assert plot.count.text().startswith("cells: ?")
    assert plot.generate_button.mapTo(win, plot.generate_button.rect().topLeft()) == button_at
    assert y.values.mapTo(win, y.values.rect().topLeft()) == y_at


def test_bad_axes_show_their_errors_at_their_rows_all_at_once_and_submit_nothing(win, qtbot):
    plot = win.compose.plot
    plot.rows["x"].values.setText("4,abc")
    plot.rows["y"].set_axis("scheduler", "euler_a,nope")
    plot.rows["z"].set_axis("steps", "4")
    qtbot.mouseClick(plot.generate_button, Qt.MouseButton.LeftButton)
    assert plot.rows["x"].error.text().startswith("x steps: 'abc' is not an integer")
    assert plot.rows["y"].error.text().startswith("y scheduler:")
    assert plot.rows["z"].error.text() == ""  # its clash with X shows once X is right

    plot.rows["x"].values.setText("4,8")
    plot.rows["y"].values.setText("euler_a")
    qtbot.mouseClick(plot.generate_button, Qt.MouseButton.LeftButton)
    assert plot.rows["z"].error.text() == "z steps: x already sweeps steps"
    qtbot.wait(300)
    assert not win.sending and not win.plots.grids and win.jobs.rowCount() == 0


def test_a_2x2_plot_over_steps_and_seed_fills_with_its_labels_and_a_cell_continues_with_its_settings(
    win, qtbot, worker, tmp_path
):
    plot = win.compose.plot
    plot.rows["x"].values.setText("4,8")
    plot.rows["y"].values.setText("1,2")
    qtbot.mouseClick(plot.generate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: isinstance(win.current_grid, PlotGridModel), timeout=WAIT)
    grid = win.current_grid
    assert isinstance(grid, PlotGridModel) and grid in win.history.grids
    assert (grid.rowCount(), grid.columnCount()) == (2, 2)
    assert [grid.headerData(i, Qt.Orientation.Horizontal) for i in range(2)] == ["4", "8"]
    assert [grid.headerData(i, Qt.Orientation.Vertical) for i in range(2)] == ["1", "2"]
    assert grid.headerData(1, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole) == "steps 8"
    assert grid.title.startswith("plot steps × seed · 4 cells")
    assert len(grid.job_ids) == 2  # one job per steps value, the seeds batched

    for job_id in grid.job_ids:
        worker.finish(job_id)
    qtbot.waitUntil(lambda: grid.complete, timeout=WAIT)
    assert len(grid.images) == 4 and "succeeded" in grid.title
    for row, seed in enumerate([1, 2]):
        for col, steps in enumerate([4, 8]):
            meta = read_png_metadata(grid.pngs[row * 2 + col])
            assert meta.request.steps == steps and meta.item.seed == seed
    win.save_grid(tmp_path / "plot.png")  # the plot's picture, with its axis labels
    assert (tmp_path / "plot.png").stat().st_size > 0
    assert plot.count.text().startswith("4 cells · about ")  # the stand-in's speed, from its records

    menu = win.cell_menu(0, 1)
    by_name = {a.objectName(): a for a in menu.actions()}
    win.compose.steps.setValue(20)
    by_name["use_settings"].trigger()
    assert (win.compose.steps.value(), win.compose.seeds.text()) == (8, "1")

    plot.set_mode(False)
    win.compose.steps.setValue(20)
    win.cell_menu(1, 0)
    {a.objectName(): a for a in win.cell_menu_shown.actions()}["plot_around"].trigger()
    assert plot.mode.isChecked() and (win.compose.steps.value(), win.compose.seeds.text()) == (4, "2")


def test_a_z_axis_makes_one_grid_per_value_each_filled_from_its_own_cells(qapp, tmp_path):
    base = JobRequest(model=MODEL, prompts=["a fox"], seeds=[0], width=64, height=64, steps=4)
    plot = make_plot(base, x="steps=4,8", y="seed=1,2", z="scheduler=euler_a,dpm++_2m")
    submitted = SubmittedPlot("p" * 32, plot, [f"{i:032x}" for i in range(len(plot.jobs))])
    history = HistoryModel()
    keeper = HistoryKeeper(HistoryStore(tmp_path), history)
    try:
        tracker = PlotTracker(keeper)
        grids = tracker.add(submitted)
        assert history.grids == grids and [g.layer for g in grids] == [0, 1]
        assert [g.title.split(" · ")[1] for g in grids] == ["scheduler euler_a", "scheduler dpm++_2m"]
        last = len(plot.cells) - 1  # z 1, y 1, x 1
        job_id, index = submitted.cell_job(last)
        tracker.image_ready(job_id, index, QImage(8, 8, QImage.Format.Format_RGB32), b"png")
        assert grids[1].done == {3} and not grids[0].done
        assert (tmp_path / grids[1].job_id / "003.png").read_bytes() == b"png"
        assert grids[1].request_at(1, 1).scheduler == "dpm++_2m" and grids[1].request_at(1, 1).seeds == [2]
    finally:
        keeper.shutdown()


def test_a_running_plot_shows_its_cells_done_images_per_second_and_time_left(qtbot):
    import time

    from seedgrid.shared.job import JobState, JobStatus

    plot = make_plot(JobRequest(model=MODEL, prompts=["p"], seeds=[0], steps=4), x="steps=4,8")  # two jobs
    grid = PlotGridModel("g", SubmittedPlot("plot-id", plot, ["j0", "j1"]))
    now = time.time()
    grid.set_job_status(JobStatus(job_id="j0", state=JobState.SUCCEEDED, images_total=1, started_at=now - 10))
    grid.set_job_status(JobStatus(job_id="j1", state=JobState.QUEUED, images_total=1))
    assert "· running · 1/2 cells done, " in grid.title and " images/s, about " in grid.title
    grid.set_job_status(JobStatus(job_id="j1", state=JobState.SUCCEEDED, images_total=1, started_at=now - 5))
    assert grid.title.endswith("· succeeded")


def test_a_plot_comes_back_after_a_restart_as_a_plot_with_the_images_made_while_the_app_was_closed(
    win, qtbot, server, worker, tmp_path
):
    """Before: after a restart a plot's jobs came back as ordinary grids, one per job, and the plot was gone."""
    plot = win.compose.plot
    plot.rows["x"].values.setText("4,8")
    plot.rows["y"].values.setText("1,2")
    plot.rows["z"].set_axis("scheduler", "euler_a,dpm++_2m")
    qtbot.mouseClick(plot.generate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(win.plots.grids) == 2, timeout=WAIT)
    first = win.plots.grids[0]
    job_ids = first.job_ids  # one job per steps and scheduler value, the seeds batched
    assert len(job_ids) == 4
    worker.finish(job_ids[0])
    qtbot.waitUntil(lambda: len(first.done) == 2, timeout=WAIT)
    win.keeper.rename(first, "foxes")
    client_id, history_dir = win.backend.client_id, tmp_path / "history"
    win.shutdown()
    for job_id in job_ids[1:]:  # finished while the app was closed
        worker.finish(job_id)

    again = open_window(qtbot, server.url, client_id, history_dir)
    try:
        grids = again.history.grids
        assert all(isinstance(g, PlotGridModel) for g in grids) and len(grids) == 2  # no grid of a plot job
        layer0, layer1 = sorted(grids, key=lambda g: g.layer)
        assert layer0.title.startswith("foxes · scheduler euler_a · 4 cells")
        assert layer1.title.startswith("plot steps × seed · scheduler dpm++_2m · 4 cells")
        qtbot.waitUntil(lambda: layer0.complete and layer1.complete, timeout=WAIT)
        assert layer0.title.endswith("· succeeded") and layer1.title.endswith("· succeeded")
        again.show_grid(layer1)
        qtbot.waitUntil(lambda: len(layer1.pngs) == 4, timeout=WAIT)
        for row, seed in enumerate([1, 2]):
            for col, steps in enumerate([4, 8]):
                meta = read_png_metadata(layer1.pngs[row * 2 + col])
                assert (meta.request.steps, meta.request.scheduler, meta.item.seed) == (steps, "dpm++_2m", seed)

        again.keeper.delete(layer0)
        again.keeper.delete(layer1)
    finally:
        again.shutdown()
    third = open_window(qtbot, server.url, client_id, history_dir)  # a deleted plot's jobs stay away
    try:
        qtbot.wait(500)
        assert third.history.grids == []
    finally:
        third.shutdown()


def test_ctrl_enter_in_plot_mode_submits_the_plot(win, qtbot):
    """Before: Ctrl+Enter ran the normal Generate in plot mode (a grid of the compose fields, no plot)."""
    assert win.compose.plot.generate_button.text().endswith("(Ctrl+Enter)")
    assert "Ctrl" not in win.compose.generate_button.text()  # the shortcut is shown where it goes
    win.compose.plot.rows["x"].values.setText("4,8")
    qtbot.keyClick(win.compose.prompt, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: win.current_grid is not None, timeout=WAIT)
    assert isinstance(win.current_grid, PlotGridModel) and win.current_grid.columnCount() == 2


def test_a_refused_plot_shows_its_refusal_at_the_axis_that_sweeps_the_refused_setting(win, qtbot):
    """Before: a model no worker serves, refused at submit, showed under the compose fields, not at its axis."""
    plot = win.compose.plot
    plot.rows["x"].set_axis("model", f"{MODEL},no-such-model")
    qtbot.mouseClick(plot.generate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not win.sending, timeout=WAIT)
    assert plot.rows["x"].error.text().startswith("x model: ")
    assert "no-such-model" in plot.rows["x"].error.text()
    assert not win.plots.grids


def test_restored_layers_come_in_order_and_a_job_shared_by_layers_is_followed_for_the_images_owed(qapp, tmp_path):
    """Z over seeds: each job's two seeds are in two layers. Before: after a restart the layers came in the
    folders' order, and every shared job was followed from none of its images (all fetched again)."""
    from seedgrid.shared.job import JobState, JobStatus

    base = JobRequest(model=MODEL, prompts=["a fox"], seeds=[0], width=64, height=64, steps=4)
    plot = make_plot(base, x="steps=4,8", z="seed=1,2")  # a job per steps value, its items: seed 1, seed 2
    submitted = SubmittedPlot("p" * 32, plot, [f"{i:032x}" for i in range(len(plot.jobs))])
    keeper = HistoryKeeper(HistoryStore(tmp_path), HistoryModel())
    try:
        tracker = PlotTracker(keeper)
        layers = tracker.add(submitted)
        for job_id in submitted.job_ids:
            tracker.job_changed(JobStatus(job_id=job_id, state=JobState.SUCCEEDED, images_total=2))
            tracker.image_ready(job_id, 0, QImage(8, 8, QImage.Format.Format_RGB32), b"png")  # seed 1: layer 0
        assert layers[0].complete and not layers[1].done
    finally:
        keeper.shutdown()

    for _ in range(3):  # folder order varies: each time the same
        again = HistoryKeeper(HistoryStore(tmp_path), HistoryModel())
        followed: list[tuple[str, list]] = []
        again.follow_requested.connect(lambda job_id, done: followed.append((job_id, done)))
        try:
            again.restore()
            assert [g.layer for g in again.model.grids] == [0, 1]  # on top: layer 0, as when submitted
            again.follow_pending()
            assert sorted(followed) == [(job_id, [0]) for job_id in submitted.job_ids]  # seed 2's owed
        finally:
            again.shutdown()
