"""This client's jobs for the queue panel: state, progress, worker, elapsed time."""

import time

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt

from shared.job import JobStatus

COLUMNS = ("job", "state", "progress", "worker", "elapsed")
JobIdRole = Qt.ItemDataRole.UserRole + 1


class JobsModel(QAbstractTableModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.jobs: list[JobStatus] = []

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.jobs)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        job = self.jobs[index.row()]
        if role == JobIdRole:
            return job.job_id
        if role == Qt.ItemDataRole.ToolTipRole:
            return job.error or job.job_id
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        column = COLUMNS[index.column()]
        if column == "job":
            return job.job_id[:8]
        if column == "state":
            return job.state.value
        if column == "progress":
            return f"{job.progress:.0%} ({job.images_done}/{job.images_total})"
        if column == "worker":
            return job.worker or "-"
        return _elapsed(job)

    def upsert(self, status: JobStatus) -> None:
        for row, job in enumerate(self.jobs):
            if job.job_id == status.job_id:
                self.jobs[row] = status
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))
                return
        self.beginInsertRows(QModelIndex(), 0, 0)
        self.jobs.insert(0, status)
        self.endInsertRows()

    def cancellable(self, job_id: str) -> bool:
        job = next((j for j in self.jobs if j.job_id == job_id), None)
        return job is not None and not job.state.finished


def _elapsed(job: JobStatus) -> str:
    if not job.submitted_at:
        return ""
    end = job.finished_at if job.state.finished and job.finished_at else time.time()
    return f"{end - job.submitted_at:.1f} s"

