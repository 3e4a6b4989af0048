"""This client's jobs for the queue panel: state, progress, place in the queue with estimated start and finish,
worker, elapsed time and prompt (the full prompts on hover)."""

import time

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt

from seedgrid.client.gui.backend import QueueEstimate
from seedgrid.client.gui.table_model import RowsTableModel
from seedgrid.shared.job import JobState, JobStatus

JobIdRole = Qt.ItemDataRole.UserRole + 1


class JobsModel(RowsTableModel):
    columns = ("job", "state", "progress", "queue", "worker", "elapsed", "prompt")

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.gone: dict[str, tuple[str, str]] = {}  # job id -> ("expired" or "lost", reason): no longer followed
        self.estimates: dict[str, QueueEstimate] = {}  # from the backend, for followed unfinished jobs

    @property
    def jobs(self) -> list[JobStatus]:
        return self.rows

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        job = self.rows[index.row()]
        if role == JobIdRole:
            return job.job_id
        column = self.columns[index.column()]
        if role == Qt.ItemDataRole.ToolTipRole and column == "prompt":
            return "\n".join(job.request.prompts) if job.request else None
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
            "queue": self.queue_text(job),
            "prompt": _prompt(job),
        }[column]

    def queue_text(self, job: JobStatus) -> str:
        """ "#2 · start in 12 s · done in 40 s" for a queued job, "done in 8 s" for a running one."""
        estimate = self.estimates.get(job.job_id)
        if estimate is None or job.state.finished or job.job_id in self.gone:
            return ""
        now = time.time()
        done = f"done in {_duration(estimate.finish_at - now)}" if estimate.finish_at else ""
        if not estimate.position:
            return done
        if estimate.start_at is None:
            return f"#{estimate.position} · no estimate yet"
        return f"#{estimate.position} · start in {_duration(estimate.start_at - now)} · {done}"

    def set_estimates(self, estimates: dict[str, QueueEstimate]) -> None:
        self.estimates = estimates
        if self.rows:
            column = self.columns.index("queue")
            self.dataChanged.emit(self.index(0, column), self.index(len(self.rows) - 1, column))

    def state_text(self, job: JobStatus) -> str:
        if job.job_id in self.gone:
            return self.gone[job.job_id][0]
        if job.state == JobState.QUEUED and job.lost_worker:
            return "worker lost, waiting for another"
        return job.activity  # "loading model NAME" while a worker loads the job's model

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


def _prompt(job: JobStatus) -> str:
    if job.request is None:
        return ""
    more = len(job.request.prompts) - 1
    return job.request.prompts[0] + (f" (+{more})" if more else "")


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _elapsed(job: JobStatus) -> str:
    if not job.submitted_at:
        return ""
    end = job.finished_at if job.state.finished and job.finished_at else time.time()
    return f"{end - job.submitted_at:.1f} s"
