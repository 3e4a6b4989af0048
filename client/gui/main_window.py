"""The main window: compose on the left, the grid in the centre with the most room, the grids list at the
right, queue and workers in tabs below the grid. Its layout, its wiring and the backend's news are here; what
continues from a cell is in cell_actions.py, what is kept across starts in window_settings.py."""

from collections import deque
from pathlib import Path

from PySide6.QtCore import QMetaObject, QSettings, QStandardPaths, Qt, QThread, Signal
from PySide6.QtGui import QAction, QImage, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QPushButton,
    QSlider,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from seedgrid.client.gui.backend import Backend
from seedgrid.client.gui.cell_actions import CellActions
from seedgrid.client.gui.compose_panel import ComposePanel
from seedgrid.client.gui.grid_model import GridModel
from seedgrid.client.gui.grid_view import GridView
from seedgrid.client.gui.history_keeper import HistoryKeeper
from seedgrid.client.gui.history_model import HistoryModel
from seedgrid.client.gui.history_store import HistoryStore
from seedgrid.client.gui.history_view import HistoryView
from seedgrid.client.gui.image_dialog import ImageDialog
from seedgrid.client.gui.jobs_model import JobIdRole, JobsModel
from seedgrid.client.gui.plot_tracker import PlotTracker
from seedgrid.client.gui.png_restore import png_paths, restore_from_png
from seedgrid.client.gui.refine_dialog import RefineDialog
from seedgrid.client.gui.submitter import Submitter
from seedgrid.client.gui.table_view import rows_table_view
from seedgrid.client.gui.window_settings import DEFAULT_SIZE, DEFAULT_ZOOM, WindowSettings
from seedgrid.client.gui.workers_model import WorkersModel
from seedgrid.shared.job import JobState, JobStatus

PANEL_WIDTHS = {"Compose": 280, "Grids": 200}
QUEUE_HEIGHT = 210


class MainWindow(QMainWindow):
    submit_requested = Signal(object)
    plot_submit_requested = Signal(object)  # a Plot
    cancel_requested = Signal(str)
    connection_changed = Signal(bool, str)  # the backend's, passed on in the GUI thread

    def __init__(
        self,
        redis_url: str,
        client_id: str | None = None,
        history_dir: Path | None = None,
        settings: QSettings | None = None,
    ):
        """`settings`: where geometry, layout, zoom and compose fields are kept across starts (None: not kept)."""
        super().__init__()
        self.setWindowTitle("seedgrid")
        self.setAcceptDrops(True)
        self.history = HistoryModel(self)
        self.jobs = JobsModel(self)
        self.workers = WorkersModel(self)
        self.current_grid: GridModel | None = None
        self.connected = False
        self.sending: deque[str] = deque()  # "job" or "plot" per submit the backend has not answered yet, in order
        self.window_settings = WindowSettings(settings)
        self.cell_actions = CellActions(self)

        self.compose = ComposePanel()
        self.grid_view = GridView()
        self.connection_label = QLabel("connecting…")
        self.statusBar().addPermanentWidget(self.connection_label)
        self.history_store = HistoryStore(history_dir or default_history_dir())
        self.keeper = HistoryKeeper(self.history_store, self.history, self)
        self.keeper.grid_removed.connect(self._grid_removed)
        self.plots = PlotTracker(self.keeper, self)
        self._build_layout()
        self.window_settings.restore(self)
        self._load_history()
        self._start_backend(redis_url, client_id)

    # -- layout
    def _build_layout(self) -> None:
        toolbar = QToolBar("Grid", movable=False)
        toolbar.setObjectName("Grid")
        self.addToolBar(toolbar)
        self.actions_by_name: dict[str, QAction] = {}
        for name, text, slot in [
            ("refine", "Refine…", self.open_refine_dialog),
            ("more_seeds", "More seeds", self.cell_actions.more_seeds),
            ("save_image", "Save image…", self.cell_actions.save_image_dialog),
            ("save_grid", "Save grid…", self.save_grid_dialog),
            ("copy_parameters", "Copy parameters", self.copy_parameters),
            ("open_png", "Open PNG…", self.open_png_dialog),
            ("cancel", "Cancel job", self.cancel_current),
        ]:
            action = toolbar.addAction(text)
            action.triggered.connect(slot)
            self.actions_by_name[name] = action
        self.zoom = QSlider(Qt.Orientation.Horizontal)
        self.zoom.setRange(48, 768)
        self.zoom.setValue(DEFAULT_ZOOM)
        self.zoom.setMaximumWidth(160)
        self.zoom.valueChanged.connect(self.grid_view.set_cell_size)
        toolbar.addSeparator()
        toolbar.addWidget(QLabel(" zoom "))
        toolbar.addWidget(self.zoom)
        self.grid_view.set_cell_size(DEFAULT_ZOOM)
        self.setCentralWidget(self.grid_view)
        # The side panels run the window's full height; queue and workers share the room below the grid.
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)

        self.history_view = HistoryView(self.keeper)
        self.history_view.grid_chosen.connect(self.show_grid)
        self.docks: dict[str, QDockWidget] = {}
        self._dock("Grids", self.history_view, Qt.DockWidgetArea.RightDockWidgetArea)
        self._dock("Compose", self.compose, Qt.DockWidgetArea.LeftDockWidgetArea)

        self.jobs_view = rows_table_view(self.jobs)
        self.cancel_job_button = QPushButton("Cancel selected job")
        self.cancel_job_button.clicked.connect(self.cancel_selected_job)
        queue = QWidget()
        queue_layout = QVBoxLayout(queue)
        queue_layout.addWidget(self.jobs_view)
        queue_layout.addWidget(self.cancel_job_button)
        self.workers_view = rows_table_view(self.workers)
        self._dock("Queue", queue, Qt.DockWidgetArea.BottomDockWidgetArea)
        self._dock("Workers", self.workers_view, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.tabifyDockWidget(self.docks["Queue"], self.docks["Workers"])
        self.docks["Queue"].raise_()
        self.resizeDocks([self.docks[n] for n in PANEL_WIDTHS], list(PANEL_WIDTHS.values()), Qt.Orientation.Horizontal)
        self.resizeDocks([self.docks["Queue"]], [QUEUE_HEIGHT], Qt.Orientation.Vertical)

        self.compose.generate_requested.connect(self.submit)
        self.compose.plot.plot_requested.connect(self.submit_plot)
        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            QShortcut(QKeySequence(keys), self).activated.connect(self.compose.submit_shown)
        self.grid_view.cell_activated.connect(self.show_image)
        self.grid_view.copy_requested.connect(self.cell_actions.copy_image)
        self.grid_view.menu_requested.connect(lambda row, col, at: self.cell_menu(row, col).popup(at))
        self.resize(*DEFAULT_SIZE)

    def _dock(self, title: str, widget: QWidget, area) -> None:
        dock = QDockWidget(title, self)
        dock.setObjectName(title)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        self.docks[title] = dock

    def save_settings(self) -> None:
        self.window_settings.save(self)

    def _start_backend(self, redis_url: str, client_id: str | None) -> None:
        # not self.thread: that would hide QObject.thread()
        self.backend_thread = QThread(self)
        self.backend = Backend(redis_url, client_id)
        self.backend.moveToThread(self.backend_thread)
        self.backend_thread.started.connect(self.backend.start)
        self.submitter_thread = QThread(self)  # its own: a submit is answered while a poll hangs on the backend's
        self.submitter = Submitter(redis_url, client_id)
        self.submitter.moveToThread(self.submitter_thread)
        self.submitter_thread.started.connect(self.submitter.start)
        self.submit_requested.connect(self.submitter.submit)
        self.plot_submit_requested.connect(self.submitter.submit_plot)
        self.submitter.plot_submitted.connect(self._plot_submitted)
        self.cancel_requested.connect(self.backend.cancel)
        self.backend.connection_changed.connect(self._connection_changed)
        self.backend.workers_changed.connect(self._workers_changed)
        self.submitter.job_submitted.connect(self._job_submitted)
        self.submitter.submit_failed.connect(self._submit_failed)
        self.submitter.queued.connect(self.backend.follow_submitted)
        self.submitter.unconfirmed.connect(self.backend.read_jobs_again)
        self.backend.job_changed.connect(self._job_changed)
        self.backend.job_lost.connect(self._job_lost)
        self.backend.image_ready.connect(self._image_ready)
        self.backend.preview_ready.connect(self._preview_ready)
        self.backend.jobs_found.connect(self.submitter.pass_on_jobs)
        self.submitter.jobs_found.connect(self.keeper.adopt)
        self.backend.queue_estimated.connect(self.jobs.set_estimates)
        self.keeper.follow_requested.connect(self.backend.follow)
        self.keeper.unfollow_requested.connect(self.backend.unfollow)
        self.keeper.follow_pending()
        self.submitter_thread.start()
        self.backend_thread.start()

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        if self.backend_thread.isRunning():
            self.save_settings()
            QMetaObject.invokeMethod(self.backend, "stop", Qt.ConnectionType.BlockingQueuedConnection)
            self.backend_thread.quit()
            self.backend_thread.wait(5000)
        if self.submitter_thread.isRunning():  # once a submit in flight is answered
            QMetaObject.invokeMethod(self.submitter, "stop", Qt.ConnectionType.BlockingQueuedConnection)
            self.submitter_thread.quit()
            self.submitter_thread.wait(5000)
        self.keeper.shutdown()

    def _load_history(self) -> None:
        self.keeper.restore()
        if self.history.grids:
            self.show_grid(self.history.grids[0])

    def _grid_removed(self, grid: GridModel) -> None:
        if grid is self.current_grid:
            self.show_grid(self.history.grids[0] if self.history.grids else None)

    # -- actions
    def submit(self, request) -> None:
        self.sending.append("job")
        self.window_settings.keep_compose(self.compose)
        self.statusBar().showMessage("sending…")  # until the backend answers, however long Redis takes
        self.submit_requested.emit(request)

    def submit_plot(self, plot) -> None:
        self.sending.append("plot")
        self.statusBar().showMessage("sending…")
        self.plot_submit_requested.emit(plot)

    def _answered(self) -> str:
        """The kind of submit the backend answered (it answers them in order)."""
        kind = self.sending.popleft() if self.sending else "job"
        if not self.sending and self.statusBar().currentMessage() == "sending…":
            self.statusBar().clearMessage()
        return kind

    def show_grid(self, grid: GridModel | None) -> None:
        if grid is self.current_grid:
            return
        self.keeper.show(grid)
        self.current_grid = grid
        self.grid_view.setModel(grid)

    # -- a cell's actions (cell_actions.py), by the names the grid view's signals and the toolbar use
    def cell_menu(self, row: int, col: int) -> QMenu:
        return self.cell_actions.menu(row, col)

    @property
    def cell_menu_shown(self) -> QMenu | None:
        return self.cell_actions.menu_shown

    def show_image(self, row: int, col: int) -> ImageDialog | None:
        return self.cell_actions.show_image(row, col)

    @property
    def image_dialog(self) -> ImageDialog | None:
        return self.cell_actions.image_dialog

    def open_refine_dialog(self) -> RefineDialog | None:
        return self.cell_actions.open_refine_dialog()

    def copy_parameters(self) -> None:
        self.cell_actions.copy_parameters()

    # -- the grid and the queue
    def cancel_current(self) -> None:
        for job_id in self.current_grid.job_ids if self.current_grid is not None else []:
            self.cancel_requested.emit(job_id)

    def cancel_selected_job(self) -> None:
        for index in self.jobs_view.selectionModel().selectedRows():
            self.cancel_requested.emit(index.data(JobIdRole))

    def save_grid(self, path: str | Path) -> None:
        assert self.current_grid is not None, "save_grid needs a grid on show"
        self.current_grid.picture().save(path)

    def save_grid_dialog(self) -> None:
        if self.current_grid is not None:
            path, _ = QFileDialog.getSaveFileName(self, "Save grid", "grid.png", "PNG (*.png)")
            if path:
                self.save_grid(path)

    def open_png_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open PNG", "", "PNG (*.png)")
        if path:
            self.restore_from_png(path)

    def restore_from_png(self, path: str | Path) -> bool:
        """Restore every setting a seedgrid (or A1111-style) PNG holds into the compose panel."""
        return restore_from_png(path, self.compose, self.statusBar())

    # -- drag and drop of PNGs
    def dragEnterEvent(self, event) -> None:
        if png_paths(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = png_paths(event.mimeData())
        if paths:
            self.restore_from_png(paths[0])
            event.acceptProposedAction()

    # -- from the backend
    def _connection_changed(self, ok: bool, message: str) -> None:
        self.connected = ok
        self.connection_label.setText(message)
        self.connection_label.setStyleSheet("" if ok else "color: #c62828;")
        self.connection_changed.emit(ok, message)

    def _workers_changed(self, workers: list) -> None:
        self.workers.set_workers(workers)
        self.compose.set_served_models(self.workers.serving())
        self.compose.loras.set_available(sorted({lora for worker in workers for lora in worker.loras}))
        if not workers:
            self.statusBar().showMessage("no online workers", 3000)

    def _submit_failed(self, field: str, message: str) -> None:
        if self._answered() == "plot":
            self.compose.plot.show_refusal(field, message)
        else:
            self.compose.show_error(field, message)
        if not field:  # not a field's fault: Redis's, with its reason
            self.statusBar().showMessage(message, 10000)

    def _job_submitted(self, job_id: str, request) -> None:
        self._answered()
        grid = self.keeper.add(job_id, request)
        self.show_grid(grid)
        self.jobs.upsert(
            JobStatus(
                job_id=job_id,
                state=JobState.QUEUED,
                request=request,
                images_total=len(request.prompts) * len(request.seeds),
            )
        )

    def _plot_submitted(self, submitted) -> None:
        self._answered()
        self.show_grid(self.plots.add(submitted)[0])

    def _job_changed(self, status: JobStatus) -> None:
        self.jobs.upsert(status)
        self.plots.job_changed(status)
        self.compose.plot.note_speed(status)
        grid = self.history.find(status.job_id)
        if grid is not None:
            saved = grid.status.state if grid.status else None
            grid.set_status(status)
            if status.state != saved:
                self.keeper.save_state(grid)
        if status.error:
            self.statusBar().showMessage(f"job {status.job_id[:8]} {status.state.value}: {status.error}", 8000)

    def _job_lost(self, job_id: str, state: str, reason: str) -> None:
        self.jobs.mark_gone(job_id, state, reason)
        self.plots.job_lost(job_id, state)
        grid = self.history.find(job_id)
        if grid is not None:
            grid.set_gone(state)
            self.keeper.save_state(grid)
        self.statusBar().showMessage(f"job {job_id[:8]} {state}: {reason}", 8000)

    def _image_ready(self, job_id: str, index: int, image: QImage, png: bytes) -> None:
        self.plots.image_ready(job_id, index, image, png)
        grid = self.history.find(job_id)
        if grid is not None:
            self.keeper.image_ready(grid, index, image, png)

    def _preview_ready(self, job_id: str, index: int, step: int, image: QImage) -> None:
        self.plots.preview_ready(job_id, index, image)
        grid = self.history.find(job_id)
        if grid is not None:
            grid.set_preview(index, image)


def default_history_dir() -> Path:
    """The platform's data folder for this app (e.g. ~/.local/share/seedgrid/history)."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".seedgrid") / "history"
