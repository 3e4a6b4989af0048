"""The Grids list: choose a grid (click or arrow keys); rename, delete (Delete key) and cap from its menu."""

from PySide6.QtCore import QPoint, QSize, Qt, Signal
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QInputDialog, QListView, QMenu, QMessageBox

from seedgrid.client.gui.grid_model import GridModel
from seedgrid.client.gui.history_keeper import HistoryKeeper
from seedgrid.client.gui.history_model import GridRole
from seedgrid.client.gui.image_loader import THUMB_SIZE
from seedgrid.client.gui.settings import history_cap, set_history_cap


class HistoryView(QListView):
    grid_chosen = Signal(object)  # GridModel

    def __init__(self, keeper: HistoryKeeper, parent=None):
        super().__init__(parent)
        self.keeper = keeper
        self.setModel(keeper.model)
        self.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu)
        self.clicked.connect(lambda index: self.grid_chosen.emit(index.data(GridRole)))
        self.selectionModel().currentChanged.connect(self._current_changed)

    def keyPressEvent(self, event) -> None:
        grid = self.current_grid()
        if grid is not None and (event.matches(QKeySequence.StandardKey.Delete) or event.key() == Qt.Key.Key_Delete):
            self.delete_grid(grid)
            return
        super().keyPressEvent(event)

    def current_grid(self) -> GridModel | None:
        index = self.currentIndex()
        return index.data(GridRole) if index.isValid() else None

    def delete_grid(self, grid: GridModel) -> None:
        answer = QMessageBox.question(self, "Delete grid", f"Delete “{grid.title}” and its images?")
        if answer == QMessageBox.StandardButton.Yes:
            self.keeper.delete(grid)

    def rename_grid(self, grid: GridModel) -> None:
        name, ok = QInputDialog.getText(self, "Rename grid", "Name (empty: the prompt):", text=grid.name)
        if ok:
            self.keeper.rename(grid, name.strip())

    def set_cap(self) -> None:
        grids, ok = QInputDialog.getInt(self, "History", "Keep at most this many grids:", history_cap(), 1, 100_000)
        if ok:
            set_history_cap(grids)
            self.keeper.prune()

    def _current_changed(self, index, _previous) -> None:
        if index.isValid():  # arrow keys as well as clicks
            self.grid_chosen.emit(index.data(GridRole))

    def _menu(self, at: QPoint) -> None:
        index = self.indexAt(at)
        grid = index.data(GridRole) if index.isValid() else None
        menu = QMenu(self)
        if grid is not None:
            menu.addAction("Rename…", lambda: self.rename_grid(grid))
            menu.addAction("Delete…", lambda: self.delete_grid(grid))
            menu.addSeparator()
        menu.addAction(f"Keep at most {history_cap()} grids…", self.set_cap)
        menu.popup(self.viewport().mapToGlobal(at))
