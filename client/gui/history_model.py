"""Every grid kept, newest first, with a small thumbnail each, so grids can be compared."""

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QImage

from seedgrid.client.gui.grid_model import GridModel

GridRole = Qt.ItemDataRole.UserRole + 1


class HistoryModel(QAbstractListModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.grids: list[GridModel] = []

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.grids)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        grid = self.grids[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return grid.title
        if role == Qt.ItemDataRole.DecorationRole:
            return grid.thumbnail
        if role == Qt.ItemDataRole.ToolTipRole:
            return "\n".join(grid.request.prompts)
        if role == GridRole:
            return grid
        return None

    def add(self, grid: GridModel) -> None:
        self.beginInsertRows(QModelIndex(), 0, 0)
        self.grids.insert(0, grid)
        self.endInsertRows()
        grid.dataChanged.connect(lambda *_: self._title_changed(grid))

    def remove(self, grid: GridModel) -> None:
        if grid in self.grids:
            row = self.grids.index(grid)
            self.beginRemoveRows(QModelIndex(), row, row)
            del self.grids[row]
            self.endRemoveRows()

    def find(self, job_id: str) -> GridModel | None:
        return next((g for g in self.grids if g.job_id == job_id), None)

    def set_thumbnail(self, grid: GridModel, image: QImage) -> None:
        grid.thumbnail = image
        self._title_changed(grid)

    def _title_changed(self, grid: GridModel) -> None:
        if grid in self.grids:  # (a removed grid may still signal)
            row = self.grids.index(grid)
            self.dataChanged.emit(self.index(row), self.index(row))
