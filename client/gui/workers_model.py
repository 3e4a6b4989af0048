"""The online workers for the workers panel: host, GPU, model, busy or idle."""

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt

from shared.workers import WorkerInfo

COLUMNS = ("worker", "host", "device", "model", "state", "done")


class WorkersModel(QAbstractTableModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.workers: list[WorkerInfo] = []

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.workers)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or role != Qt.ItemDataRole.DisplayRole:
            return None
        w = self.workers[index.row()]
        return {
            "worker": w.name, "host": w.host, "device": w.device_name or w.device, "model": w.model,
            "state": "busy" if w.busy else "idle", "done": str(w.jobs_done),
        }[COLUMNS[index.column()]]

    def set_workers(self, workers: list[WorkerInfo]) -> None:
        if workers == self.workers:
            return
        self.beginResetModel()
        self.workers = list(workers)
        self.endResetModel()

    def models(self) -> dict[str, list[str]]:
        """Model name -> schedulers, over all online workers."""
        served: dict[str, list[str]] = {}
        for w in self.workers:
            served.setdefault(w.model, w.schedulers)
        return served
