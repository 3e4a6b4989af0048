"""The online workers for the workers panel: host, GPU, model, busy or idle."""

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt

from seedgrid.client.gui.table_model import RowsTableModel
from seedgrid.shared.workers import ModelOffer, WorkerInfo, served_models, serving


class WorkersModel(RowsTableModel):
    columns = ("worker", "host", "device", "model", "state", "done")

    @property
    def workers(self) -> list[WorkerInfo]:
        return self.rows

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or role != Qt.ItemDataRole.DisplayRole:
            return None
        w = self.rows[index.row()]
        return {
            "worker": w.name,
            "host": w.host,
            "device": f"{w.device_name or w.device} ({w.device_memory_gb:g} GB)",
            "model": w.models_label(),
            "state": w.state(),
            "done": str(w.jobs_done),
        }[self.columns[index.column()]]

    def set_workers(self, workers: list[WorkerInfo]) -> None:
        if workers == self.rows:
            return
        self.beginResetModel()
        self.rows = list(workers)
        self.endResetModel()

    def models(self) -> dict[str, list[str]]:
        """Model name -> schedulers, over all online workers."""
        return served_models(self.rows)

    def serving(self) -> dict[str, ModelOffer]:
        """Model name -> what an online worker serving it advertises (family, defaults, schedulers); loaded first."""
        return serving(self.rows)
