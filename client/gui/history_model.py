"""Every grid of the session, newest first, so grids can be compared."""

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt

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
        if role == GridRole:
            return grid
        return None

    def add(self, grid: GridModel) -> None:
        self.beginInsertRows(QModelIndex(), 0, 0)
        self.grids.insert(0, grid)
        self.endInsertRows()
        grid.dataChanged.connect(lambda *_: self._title_changed(grid))

    def find(self, job_id: str) -> GridModel | None:
        return next((g for g in self.grids if g.job_id == job_id), None)

    def _title_changed(self, grid: GridModel) -> None:
        row = self.grids.index(grid)
        self.dataChanged.emit(self.index(row), self.index(row))
