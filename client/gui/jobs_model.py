"""This client's jobs for the queue panel: state, progress, worker, elapsed time."""

import time

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt

from seedgrid.client.gui.table_model import RowsTableModel
from seedgrid.shared.job import JobState, JobStatus

JobIdRole = Qt.ItemDataRole.UserRole + 1


class JobsModel(RowsTableModel):
    columns = ("job", "state", "progress", "worker", "elapsed")

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.gone: dict[str, tuple[str, str]] = {}  # job id -> ("expired" or "lost", reason): no longer followed

    @property
    def jobs(self) -> list[JobStatus]:
        return self.rows

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        job = self.rows[index.row()]
        if role == JobIdRole:
            return job.job_id
        if role == Qt.ItemDataRole.ToolTipRole:
            gone = self.gone.get(job.job_id)
            return gone[1] if gone else job.error or job.job_id
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        return {
            "job": job.job_id[:8],
            "state": self.state_text(job),
            "worker": job.worker or "-",
            "elapsed": _elapsed(job),
            "progress": f"{job.progress:.0%} ({job.images_done}/{job.images_total})",
        }[self.columns[index.column()]]

    def state_text(self, job: JobStatus) -> str:
        if job.job_id in self.gone:
            return self.gone[job.job_id][0]
        if job.state == JobState.QUEUED and job.lost_worker:
            return "worker lost, waiting for another"
        return job.state.value

    def mark_gone(self, job_id: str, state: str, reason: str) -> None:
        self.gone[job_id] = (state, reason)
        for row, job in enumerate(self.rows):
            if job.job_id == job_id:
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.columns) - 1))

    def upsert(self, status: JobStatus) -> None:
        for row, job in enumerate(self.rows):
            if job.job_id == status.job_id:
                self.rows[row] = status
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.columns) - 1))
                return
        self.beginInsertRows(QModelIndex(), 0, 0)
        self.rows.insert(0, status)
        self.endInsertRows()


def _elapsed(job: JobStatus) -> str:
    if not job.submitted_at:
        return ""
    end = job.finished_at if job.state.finished and job.finished_at else time.time()
    return f"{end - job.submitted_at:.1f} s"
