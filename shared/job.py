"""Job states and the records a worker writes for the client to read."""

from enum import Enum

from pydantic import BaseModel, ConfigDict

from seedgrid.shared.request import JobRequest


class JobState(str, Enum):
    QUEUED = "queued"
    STARTED = "started"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class ImageRecord(BaseModel):
    """One stored image: where it sits in the grid and everything that made it."""

    model_config = ConfigDict(frozen=True)
    job_id: str
    index: int
    row: int
    col: int
    prompt: str
    seed: int
    worker: str
    seconds: float


class JobStatus(BaseModel):
    """A job as the client sees it, read from the job's Redis hash."""

    job_id: str
    state: JobState
    request: JobRequest | None = None
    client_id: str = ""
    worker: str = ""
    step: int = 0
    steps: int = 0
    batch_size: int = 0
    images_done: int = 0
    images_total: int = 0
    attempts: int = 0
    priority: int = 3
    merged_into: str = ""  # the job whose GPU batch this job ran in, if it shared one
    merged_jobs: int = 0  # jobs this job's current batch took in from other clients
    lost_worker: str = ""  # the worker that stopped while running this job; another took it over
    plot_id: str = ""  # the plot the job is part of (names.plot_jobs_key lists the plot's jobs)
    error: str = ""
    phase: str = ""  # what a started job does before its first step: "loading model NAME" (else empty)
    load_seconds: float = 0.0  # how long its workers loaded its model for it (not generating)
    submitted_at: float = 0.0
    started_at: float = 0.0
    finished_at: float = 0.0

    @property
    def activity(self) -> str:
        """The state as people read it: a started job's phase while it has one ("loading model NAME")."""
        if self.phase and self.state in (JobState.STARTED, JobState.RUNNING):
            return self.phase
        return self.state.value

    @property
    def progress(self) -> float:
        """Fraction of all denoising steps of the job done, 0..1."""
        if self.state == JobState.SUCCEEDED:
            return 1.0
        if not self.images_total or not self.steps:
            return 0.0
        done = self.images_done * self.steps + self.batch_size * self.step
        return min(1.0, done / (self.images_total * self.steps))
