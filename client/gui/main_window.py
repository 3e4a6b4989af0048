"""The main window: compose on the left, the grid in the centre with the most room, the grids list at the
right, queue and workers in tabs below the grid."""

import json
import secrets
from collections import deque
from pathlib import Path

from PySide6.QtCore import QByteArray, QMetaObject, QSettings, QSize, QStandardPaths, Qt, QThread, Signal
from PySide6.QtGui import QAction, QGuiApplication, QImage, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDockWidget,
    QFileDialog,
    QHeaderView,
    QLabel,
    QMainWindow,
    QMenu,
    QPushButton,
    QSlider,
    QTableView,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from seedgrid.client.gui.backend import Backend
from seedgrid.client.gui.clipboard import copy_png
from seedgrid.client.gui.compose_panel import ComposePanel
from seedgrid.client.gui.grid_model import GridModel, ImageRole, PngRole
from seedgrid.client.gui.grid_view import GridView
from seedgrid.client.gui.history_keeper import HistoryKeeper
from seedgrid.client.gui.history_model import HistoryModel
from seedgrid.client.gui.history_store import HistoryStore
from seedgrid.client.gui.history_view import HistoryView
from seedgrid.client.gui.image_dialog import ImageDialog
from seedgrid.client.gui.jobs_model import JobIdRole, JobsModel
from seedgrid.client.gui.plot_tracker import PlotTracker
from seedgrid.client.gui.refine_dialog import RefineDialog
from seedgrid.client.gui.settings import COMPOSE_KEY, GEOMETRY_KEY, LAYOUT_KEY, SIZE_KEY, ZOOM_KEY
from seedgrid.client.gui.submitter import Submitter
from seedgrid.client.gui.workers_model import WorkersModel
from seedgrid.shared import limits as L
from seedgrid.shared.job import JobState, JobStatus
from seedgrid.shared.pngmeta import read_png_metadata
from seedgrid.shared.request import Item, RequestError, parse_request

DEFAULT_SIZE = (1400, 900)
DEFAULT_ZOOM = 88  # at the default size, a grid of 8 seeds fits beside the compose panel and the grids list
PANEL_WIDTHS = {"Compose": 280, "Grids": 200}
QUEUE_HEIGHT = 210
# The cell menu: name, text, whether it needs the cell's image.
CELL_ACTIONS = [
    ("use_settings", "Use these settings", False),
    ("refine", "Refine…", False),
    ("more_like_this", "More seeds like this", False),
    ("plot_around", "Plot around this cell", False),
    ("copy_image", "Copy image", True),
    ("copy_parameters", "Copy parameters", True),
    ("save_image", "Save image…", True),
    ("large_view", "Open large view", True),
]


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
        self.settings = settings
        self.image_dialog: ImageDialog | None = None

        self.compose = ComposePanel()
        self.grid_view = GridView()
        self.connection_label = QLabel("connecting…")
        self.statusBar().addPermanentWidget(self.connection_label)
        self.history_store = HistoryStore(history_dir or default_history_dir())
        self.keeper = HistoryKeeper(self.history_store, self.history, self)
        self.keeper.grid_removed.connect(self._grid_removed)
        self.plots = PlotTracker(self.keeper, self)
        self._build_layout()
        self._restore_settings()
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
            ("more_seeds", "More seeds", self.more_seeds),
            ("save_image", "Save image…", self.save_image_dialog),
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

        self.jobs_view = _table(self.jobs)
        self.cancel_job_button = QPushButton("Cancel selected job")
        self.cancel_job_button.clicked.connect(self.cancel_selected_job)
        queue = QWidget()
        queue_layout = QVBoxLayout(queue)
        queue_layout.addWidget(self.jobs_view)
        queue_layout.addWidget(self.cancel_job_button)
        self.workers_view = _table(self.workers)
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
        self.grid_view.copy_requested.connect(self.copy_image)
        self.grid_view.menu_requested.connect(lambda row, col, at: self.cell_menu(row, col).popup(at))
        self.resize(*DEFAULT_SIZE)

    def _dock(self, title: str, widget: QWidget, area) -> None:
        dock = QDockWidget(title, self)
        dock.setObjectName(title)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        self.docks[title] = dock

    # -- kept across starts
    def _restore_settings(self) -> None:
        if self.settings is None:
            return
        geometry, layout = self.settings.value(GEOMETRY_KEY), self.settings.value(LAYOUT_KEY)
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)  # the position and a maximized state; the size as saved
            size = self.settings.value(SIZE_KEY)
            if isinstance(size, QSize) and not self.isMaximized() and size.isValid():
                self.resize(size)
        if isinstance(layout, QByteArray):
            self.restoreState(layout)
        try:
            self.zoom.setValue(int(str(self.settings.value(ZOOM_KEY, DEFAULT_ZOOM))))
        except ValueError:
            pass
        try:
            values = json.loads(str(self.settings.value(COMPOSE_KEY, "{}")))
        except ValueError:
            values = {}
        if isinstance(values, dict):
            self.compose.set_values(values)

    def save_settings(self) -> None:
        if self.settings is None:
            return
        self.settings.setValue(GEOMETRY_KEY, self.saveGeometry())
        self.settings.setValue(SIZE_KEY, self.size())
        self.settings.setValue(LAYOUT_KEY, self.saveState())
        self.settings.setValue(ZOOM_KEY, self.zoom.value())
        self.settings.setValue(COMPOSE_KEY, json.dumps(self.compose.values()))
        self.settings.sync()

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
        if self.settings is not None:
            self.settings.setValue(COMPOSE_KEY, json.dumps(self.compose.values()))
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

    def selected_item(self) -> Item | None:
        cell = self.grid_view.selected_cell()
        if self.current_grid is None or cell is None:
            return None
        return self.current_grid.item_at(*cell)

    def open_refine_dialog(self) -> RefineDialog | None:
        item = self.selected_item()
        if item is None or self.current_grid is None:
            self.statusBar().showMessage("select a cell to refine", 3000)
            return None
        dialog = RefineDialog(item.prompt, item.seed, self)
        base = self.current_grid.request_at(item.row, item.col)  # a plot cell's settings are its own
        dialog.accepted.connect(lambda: self._submit_variant(base, dialog.prompts(), [item.seed]))
        dialog.open()
        return dialog

    def more_seeds(self) -> None:
        """The same prompts at as many new random seeds as the current grid has."""
        if self.current_grid is None:
            return
        base = self.current_grid.request
        count = min(len(base.seeds), L.MAX_ITEMS // len(base.prompts))
        self._submit_variant(base, list(base.prompts), [secrets.randbelow(L.MAX_SEED + 1) for _ in range(count)])

    def _submit_variant(self, base, prompts: list[str], seeds: list[int]) -> None:
        try:
            request = parse_request({**base.model_dump(), "prompts": prompts, "seeds": seeds})
        except RequestError as exc:
            self.compose.show_error(exc.field, str(exc))
            return
        self.submit(request)

    def cancel_current(self) -> None:
        for job_id in self.current_grid.job_ids if self.current_grid is not None else []:
            self.cancel_requested.emit(job_id)

    def cancel_selected_job(self) -> None:
        for index in self.jobs_view.selectionModel().selectedRows():
            self.cancel_requested.emit(index.data(JobIdRole))

    def selected_png(self) -> bytes | None:
        cell = self.grid_view.selected_cell()
        if self.current_grid is None or cell is None:
            return None
        return self.current_grid.index(*cell).data(PngRole)

    def save_image_dialog(self) -> None:
        png = self.selected_png()
        item = self.selected_item()
        if png is None or item is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save image", f"seed{item.seed}.png", "PNG (*.png)")
        if path:
            Path(path).write_bytes(png)

    def save_grid(self, path: str | Path) -> None:
        assert self.current_grid is not None, "save_grid needs a grid on show"
        self.current_grid.picture().save(path)

    def save_grid_dialog(self) -> None:
        if self.current_grid is not None:
            path, _ = QFileDialog.getSaveFileName(self, "Save grid", "grid.png", "PNG (*.png)")
            if path:
                self.save_grid(path)

    def copy_parameters(self) -> None:
        png = self.selected_png()
        if png is not None:
            QGuiApplication.clipboard().setText(read_png_metadata(png).parameters)

    def open_png_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open PNG", "", "PNG (*.png)")
        if path:
            self.restore_from_png(path)

    def restore_from_png(self, path: str | Path) -> bool:
        """Restore every setting a seedgrid (or A1111-style) PNG holds into the compose panel."""
        try:
            meta = read_png_metadata(path)
        except (ValueError, OSError) as exc:
            self.statusBar().showMessage(f"cannot read {Path(path).name}: {exc}", 6000)
            return False
        if meta.request is None:
            self.statusBar().showMessage(f"{Path(path).name} holds no generation parameters", 6000)
            return False
        request = meta.request
        if meta.item is not None:
            request = request.model_copy(update={"prompts": [meta.item.prompt], "seeds": [meta.item.seed]})
        self.compose.load_request(request)
        self.statusBar().showMessage(f"settings restored from {Path(path).name}", 4000)
        return True

    def show_image(self, row: int, col: int) -> ImageDialog | None:
        """The large view of a cell, with previous/next through the grid's made images."""
        grid = self.current_grid
        assert grid is not None, "cells are activated only on a grid on show"
        wanted = grid.item_at(row, col).index
        made = [item for item in grid.items if item.index in grid.pngs]
        if wanted not in grid.pngs:
            return None
        pages = [(grid.caption(i), grid.pngs[i.index]) for i in made]
        if self.image_dialog is not None:
            self.image_dialog.close()
        self.image_dialog = ImageDialog(pages, [i.index for i in made].index(wanted), self)
        self.image_dialog.open()
        return self.image_dialog

    # -- a cell's menu and clipboard
    def cell_menu(self, row: int, col: int) -> QMenu:
        """The right-click menu of a cell (the cell is selected first): everything that continues from it."""
        assert self.current_grid is not None, "cells have menus only on a grid on show"
        self.grid_view.select_cell(row, col)
        has_image = self.current_grid.index(row, col).data(PngRole) is not None
        slots = {
            "use_settings": self.use_cell_settings,
            "refine": self.open_refine_dialog,
            "more_like_this": self.more_seeds_like_this,
            "plot_around": self.plot_around_cell,
            "copy_image": self.copy_image,
            "copy_parameters": self.copy_parameters,
            "save_image": self.save_image_dialog,
            "large_view": lambda: self.show_image(row, col),
        }
        menu = QMenu(self)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        for name, text, needs_image in CELL_ACTIONS:
            action = menu.addAction(text)
            action.setObjectName(name)
            action.setEnabled(has_image or not needs_image)
            action.triggered.connect(slots[name])
            if name in ("plot_around", "save_image"):
                menu.addSeparator()
        self.cell_menu_shown = menu
        return menu

    def use_cell_settings(self) -> None:
        """Put the selected cell's settings (its prompt and seed) into the compose panel."""
        item = self.selected_item()
        if item is not None and self.current_grid is not None:
            self.compose.load_request(self.current_grid.request_at(item.row, item.col))

    def plot_around_cell(self) -> None:
        """Plot mode, its base the selected cell's settings and seed."""
        self.use_cell_settings()
        self.compose.plot.set_mode(True)
        self.compose.plot.rows["x"].values.setFocus()

    def more_seeds_like_this(self) -> None:
        """The selected cell's prompt at as many new random seeds as its grid has."""
        item = self.selected_item()
        if item is None or self.current_grid is None:
            return
        base = self.current_grid.request_at(item.row, item.col)
        seeds = [secrets.randbelow(L.MAX_SEED + 1) for _ in range(max(4, len(base.seeds)))]
        self._submit_variant(base, [item.prompt], seeds[: L.MAX_ITEMS])

    def copy_image(self) -> None:
        """The selected cell's PNG, its generation metadata kept, and its image to the clipboard."""
        png = self.selected_png()
        cell = self.grid_view.selected_cell()
        if png is None or cell is None or self.current_grid is None:
            return
        copy_png(png, self.current_grid.index(*cell).data(ImageRole))
        self.statusBar().showMessage("image copied", 2000)

    # -- drag and drop of PNGs
    def dragEnterEvent(self, event) -> None:
        if any(url.toLocalFile().lower().endswith(".png") for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        for url in event.mimeData().urls():
            if url.toLocalFile().lower().endswith(".png"):
                self.restore_from_png(url.toLocalFile())
                event.acceptProposedAction()
                return

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


def _table(model) -> QTableView:
    """Columns as wide as their contents; the last (the prompt, the job count) takes the rest, elided."""
    view = QTableView()
    view.setModel(model)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setTextElideMode(Qt.TextElideMode.ElideRight)
    view.setWordWrap(False)
    header = view.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setStretchLastSection(True)
    header.setMinimumSectionSize(40)
    view.verticalHeader().setVisible(False)
    view.verticalHeader().setDefaultSectionSize(view.fontMetrics().height() + 6)
    return view
