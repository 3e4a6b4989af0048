"""Following jobs and workers, on the app's backend thread: polls Redis and reports through signals
(submits go through submitter.py, on a thread of their own)."""

import logging
import time
from collections import deque
from dataclasses import dataclass

import redis
from PySide6.QtCore import QObject, QTimer, Signal, Slot
from PySide6.QtGui import QImage

from seedgrid.client.api import SeedgridClient
from seedgrid.client.gui.connection import connection_message, is_connection_error
from seedgrid.client.queue_ahead import QueuedJob
from seedgrid.shared.job import JobState, JobStatus
from seedgrid.shared.workers import WorkerInfo

WORKERS_EVERY_S = 2.0
QUEUE_EVERY_S = 1.5  # every client's queued jobs of the models with followed queued jobs, read anew
JOBS_READ_BACK = 100  # this client's newest jobs read at start, to take back what finished while closed
EXPIRED, LOST = "expired", "lost"
RATE_SAMPLES = 8  # finished jobs per model whose speed makes the estimates
STARTED = (JobState.STARTED, JobState.RUNNING)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueueEstimate:
    """Where a followed job stands: `position` 1 is next for its model, among every client's jobs (0: running);
    times are wall-clock seconds, None while no speed of the model is known yet."""

    position: int
    start_at: float | None = None
    finish_at: float | None = None


class Throughput:
    """Images per second per model, from the records of finished jobs (a worker's speed) and running ones."""

    def __init__(self) -> None:
        self.samples: dict[str, deque[tuple[float, float]]] = {}  # model -> (images, seconds)
        self.seen: set[str] = set()

    def add(self, status: JobStatus) -> None:
        """A succeeded job's images over its run time; each job counts once."""
        if status.request is None or status.job_id in self.seen or status.state != JobState.SUCCEEDED:
            return
        seconds = status.finished_at - status.started_at - status.load_seconds
        if status.started_at and seconds > 0 and status.images_total:
            self.seen.add(status.job_id)
            samples = self.samples.setdefault(status.request.model, deque(maxlen=RATE_SAMPLES))
            samples.append((float(status.images_total), seconds))

    def per_worker(self, model: str, running: list[JobStatus], now: float) -> float | None:
        """One worker's images per second on `model`; running jobs count while no job has finished."""
        samples = list(self.samples.get(model, ()))
        if not samples:
            samples = [
                (s.progress * s.images_total, now - s.started_at - s.load_seconds)
                for s in running
                if s.started_at and now - s.started_at - s.load_seconds >= 1.0 and s.progress > 0
            ]
        images, seconds = sum(i for i, _ in samples), sum(t for _, t in samples)
        return images / seconds if images > 0 and seconds > 0 else None


def estimate_queue(
    statuses: list[JobStatus],
    workers: list[WorkerInfo],
    throughput: Throughput,
    now: float,
    queues: dict[str, list[QueuedJob]] | None = None,
) -> dict[str, QueueEstimate]:
    """Each followed unfinished job's place in its model's queue as the workers take them (by priority, then
    when queued), among the followed jobs and every client's jobs in `queues` (SeedgridClient.queues; a followed
    job's own record wins over its entry there), and when it should start and finish at the model's speed times
    its workers, after the images left of the jobs ahead and of the running ones."""
    estimates: dict[str, QueueEstimate] = {}
    followed = {s.job_id for s in statuses}
    models = {s.request.model for s in statuses if s.request is not None and not s.state.finished}
    for model in sorted(models):
        mine = [s for s in statuses if s.request is not None and s.request.model == model]
        read = (queues or {}).get(model, [])
        queued_at = {q.job_id: q.queued_at for q in read}
        others = [q for q in read if q.job_id not in followed]
        running = [s for s in mine if s.state in STARTED]
        rate = throughput.per_worker(model, running, now)
        served_by = max(1, sum(1 for w in workers if w.serves(model)))
        left = [s.images_total * (1 - s.progress) for s in running]
        for s, images in zip(running, left, strict=True):
            estimates[s.job_id] = QueueEstimate(0, s.started_at or None, now + images / rate if rate else None)
        ahead = sum(left) + sum(q.images_left for q in others if q.state in STARTED)
        waiting: list[tuple[tuple[int, float, str], JobStatus | None, float]] = [
            (q.order, None, q.images_left) for q in others if q.state == JobState.QUEUED
        ]
        waiting += [
            ((s.priority, queued_at.get(s.job_id, s.submitted_at), s.job_id), s, s.images_total * (1 - s.progress))
            for s in mine
            if s.state == JobState.QUEUED
        ]
        for position, (_, status, images) in enumerate(sorted(waiting, key=lambda w: w[0]), 1):
            start = now + ahead / (rate * served_by) if rate else None
            ahead += images
            finish = now + ahead / (rate * served_by) if rate else None
            if status is not None:
                estimates[status.job_id] = QueueEstimate(position, start, finish)
    return estimates


class Backend(QObject):
    """Lives in a QThread; the GUI talks to it only through queued signals and slots."""

    connection_changed = Signal(bool, str)
    workers_changed = Signal(list)  # list[WorkerInfo]
    job_changed = Signal(object)  # JobStatus
    job_lost = Signal(str, str, str)  # job id, EXPIRED or LOST, the reason; no longer followed
    image_ready = Signal(str, int, QImage, bytes)  # job id, item index, image, PNG with metadata
    preview_ready = Signal(str, int, int, QImage)  # job id, item index, step, preview
    jobs_found = Signal(list)  # list[JobStatus]: this client's jobs in Redis, read at start (read_jobs_again)
    queue_estimated = Signal(dict)  # job id -> QueueEstimate, for every followed unfinished job

    def __init__(self, redis_url: str, client_id: str | None = None, poll_ms: int = 150):
        super().__init__()
        self.redis_url = redis_url
        self.client_id = client_id
        self.poll_ms = poll_ms
        self.client: SeedgridClient | None = None
        self._timer: QTimer | None = None
        self._connection: tuple[bool, str] | None = None
        self._workers_at = 0.0
        self._active: dict[str, JobStatus | None] = {}
        self._fetched: dict[str, set[int]] = {}
        self._preview_steps: dict[tuple[str, int], int] = {}
        self._jobs_read = False
        self._workers: list[WorkerInfo] = []
        self.throughput = Throughput()
        self._estimates: dict[str, QueueEstimate] = {}
        self._queues: dict[str, list[QueuedJob]] = {}
        self._queues_at = 0.0

    @property
    def api(self) -> SeedgridClient:
        """The client, made by start(): every other slot runs after it on the backend thread."""
        if self.client is None:
            raise RuntimeError("Backend.start() has not run")
        return self.client

    @Slot()
    def start(self) -> None:
        self.client = SeedgridClient(self.redis_url, self.client_id)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.poll)
        self._timer.start(self.poll_ms)
        self.poll()

    @Slot()
    def stop(self) -> None:
        if self._timer:
            self._timer.stop()
        if self.client:
            self.client.close()

    @Slot(list)
    def follow_submitted(self, job_ids: list) -> None:
        """Follow the jobs the Submitter has just queued, from a poll at once."""
        for job_id in job_ids:
            self.follow(job_id, [])
        self.poll()

    @Slot()
    def read_jobs_again(self) -> None:
        """Read this client's jobs at the next poll: a submit that failed part way may have queued one."""
        self._jobs_read = False

    @Slot(str, list)
    def follow(self, job_id: str, done: list) -> None:
        """Follow a job submitted earlier (before a restart); `done`: indices whose image the app has."""
        if job_id not in self._active:
            self._active[job_id] = None
            self._fetched[job_id] = set(done)

    @Slot(str)
    def unfollow(self, job_id: str) -> None:
        self._active.pop(job_id, None)
        self._fetched.pop(job_id, None)

    @Slot(str)
    def cancel(self, job_id: str) -> None:
        try:
            self.api.cancel(job_id)
        except KeyError:
            self._drop(job_id, EXPIRED, "no longer in Redis (expired, or Redis lost its data)")
        except (redis.RedisError, OSError) as exc:
            self._set_connection(False, f"cancel failed: {connection_message(exc)}")
            return
        self.poll()

    @Slot()
    def poll(self) -> None:
        """One round of calls; the connection state is what the last of them said."""
        try:
            if time.monotonic() - self._workers_at > WORKERS_EVERY_S:
                self._poll_workers()
            elif not self._active:
                self.api.redis.ping()
            if not self._jobs_read:
                self._read_jobs()
            for job_id in list(self._active):
                self._poll_one(job_id)
            self._read_queues()
            self._estimate()
        except Exception as exc:
            if not is_connection_error(exc):
                raise
            self._set_connection(False, connection_message(exc))
            return
        self._set_connection(True, "connected")

    def _set_connection(self, ok: bool, message: str) -> None:
        if self._connection != (ok, message):
            self._connection = (ok, message)
            self.connection_changed.emit(ok, message)

    def _poll_workers(self) -> None:
        self._workers_at = time.monotonic()
        try:
            workers = self.api.workers()
        except Exception as exc:
            if is_connection_error(exc):
                raise
            log.warning("unreadable worker list", exc_info=True)  # a malformed heartbeat; read again later
            return
        self._workers = workers
        self.workers_changed.emit(workers)

    def _estimate(self) -> None:
        """From the records this round read (no Redis call); sent when a position or a second changes."""
        followed = [s for s in self._active.values() if s is not None]
        estimates = estimate_queue(followed, self._workers, self.throughput, time.time(), self._queues)
        rounded = {k: QueueEstimate(e.position, *(round(t) if t else None for t in (e.start_at, e.finish_at)))
                   for k, e in estimates.items()}  # fmt: skip
        if rounded != self._estimates:
            self._estimates = rounded
            self.queue_estimated.emit(estimates)

    def _read_queues(self) -> None:
        """Every client's jobs in the queues of the models with followed queued jobs: every QUEUE_EVERY_S, and at
        once for a model not read yet."""
        models = {
            s.request.model
            for s in self._active.values()
            if s is not None and s.request is not None and s.state == JobState.QUEUED
        }
        if models <= self._queues.keys() and time.monotonic() - self._queues_at < QUEUE_EVERY_S:
            return
        self._queues_at = time.monotonic()
        try:
            self._queues = self.api.queues(models)
        except Exception as exc:
            if is_connection_error(exc):
                raise
            log.warning("unreadable queue", exc_info=True)  # estimated from the last read; read again later

    def _read_jobs(self) -> None:
        try:
            jobs = self.api.jobs(JOBS_READ_BACK)
        except Exception as exc:
            if is_connection_error(exc):
                raise  # read again at the next poll
            log.warning("unreadable job list", exc_info=True)
            jobs = []
        self._jobs_read = True
        for status in jobs:
            self.throughput.add(status)
        self.jobs_found.emit(jobs)

    def _poll_one(self, job_id: str) -> None:
        """Follow one job; a failure of its own records ends only this job (a lost connection ends the round)."""
        try:
            self._poll_job(job_id)
        except KeyError:
            self._drop(job_id, EXPIRED, "no longer in Redis (expired, or Redis lost its data)")
        except Exception as exc:
            if is_connection_error(exc):
                raise
            log.warning("job %s: unreadable record", job_id, exc_info=True)
            self._drop(job_id, LOST, f"unreadable record ({type(exc).__name__}: {exc})")

    def _drop(self, job_id: str, state: str, reason: str) -> None:
        self._active.pop(job_id, None)
        self._fetched.pop(job_id, None)
        for key in [k for k in self._preview_steps if k[0] == job_id]:
            del self._preview_steps[key]
        self.job_lost.emit(job_id, state, reason)

    def _poll_job(self, job_id: str) -> None:
        status = self.api.status(job_id)
        if status != self._active[job_id]:
            self._active[job_id] = status
            self.throughput.add(status)
            self.job_changed.emit(status)
        fetched = self._fetched[job_id]
        records = self.api.images(job_id)
        for record in records:
            if record.index in fetched:
                continue
            png = self.api.image_png(job_id, record.index)
            fetched.add(record.index)
            self.image_ready.emit(job_id, record.index, QImage.fromData(png), png)
        if not status.state.finished:
            self._poll_previews(job_id, status, fetched)
        elif len(fetched) >= len(records):
            del self._active[job_id]

    def _poll_previews(self, job_id: str, status: JobStatus, fetched: set[int]) -> None:
        in_flight = [i for i in range(status.images_total) if i not in fetched][: max(1, status.batch_size)]
        for index in in_flight:
            found = self.api.preview(job_id, index)
            if found and found[0] > self._preview_steps.get((job_id, index), 0):
                self._preview_steps[(job_id, index)] = found[0]
                self.preview_ready.emit(job_id, index, found[0], QImage.fromData(found[1]))
