"""Submits on a thread and connections of their own: a submit is answered while a poll hangs on a stalled
Redis on the backend's thread."""

import logging

import redis
from kombu.exceptions import OperationalError
from PySide6.QtCore import QObject, Signal, Slot
from redis.backoff import NoBackoff
from redis.retry import Retry

from seedgrid.client.api import CONNECT_TIMEOUT_SECONDS, SeedgridClient
from seedgrid.client.gui.connection import connection_message, is_connection_error
from seedgrid.shared.redis_conn import connect
from seedgrid.shared.request import RequestError

# Nothing is written until Redis answers a PING on a new connection within this: a stalled Redis gets
# "not sent" in seconds. The worker check and the writes after it keep the shared bounds (5 s a reply,
# one retry): a slow write is waited for rather than reported as not sent when it may have been queued.
PROBE_SECONDS = 5.0

log = logging.getLogger(__name__)


class Submitter(QObject):
    """Lives in a QThread of its own; the GUI and the backend talk to it only through queued signals and slots.
    Submits are answered in the order they came."""

    job_submitted = Signal(str, object)  # job id, JobRequest
    plot_submitted = Signal(object)  # SubmittedPlot
    submit_failed = Signal(str, str)  # field, message
    queued = Signal(list)  # ids of the jobs just queued: for the backend to follow
    unconfirmed = Signal()  # a send failed part way: Redis may hold a job this app has not heard of
    jobs_found = Signal(list)  # the backend's, passed on in order with this thread's answers

    def __init__(self, redis_url: str, client_id: str | None = None):
        super().__init__()
        self.redis_url = redis_url
        self.client_id = client_id
        self.client: SeedgridClient | None = None

    @property
    def api(self) -> SeedgridClient:
        """The client, made by start(): every other slot runs after it on this thread."""
        if self.client is None:
            raise RuntimeError("Submitter.start() has not run")
        return self.client

    @Slot()
    def start(self) -> None:
        self.client = SeedgridClient(self.redis_url, self.client_id)

    @Slot()
    def stop(self) -> None:
        if self.client:
            self.client.close()

    @Slot(object)
    def submit(self, request) -> None:
        job_id = self._sent(lambda: self.api.submit(request))
        if job_id is not None:
            self.job_submitted.emit(job_id, request)
            self.queued.emit([job_id])

    @Slot(object)
    def submit_plot(self, plot) -> None:
        """All the plot's jobs or none (client.submit_plot)."""
        submitted = self._sent(lambda: self.api.submit_plot(plot), plot=True)
        if submitted is not None:
            self.plot_submitted.emit(submitted)
            self.queued.emit(list(submitted.job_ids))

    @Slot(list)
    def pass_on_jobs(self, jobs: list) -> None:
        """The backend's jobs_found, after the answer to any submit in flight: a job being sent is never
        adopted from Redis before the window hears it was submitted."""
        self.jobs_found.emit(jobs)

    def _sent(self, send, plot: bool = False):
        """What `send()` returns, or None with the reason emitted: a refusal naming its field, Redis not
        answering (nothing sent), or a failure part way (perhaps queued: the backend reads the jobs again; a
        plot's jobs already queued were cancelled by client.submit_plot, so they are not read back as grids).
        Every submit is answered once."""
        try:
            self._probe()
        except (redis.RedisError, OSError) as exc:
            self.api.redis.connection_pool.disconnect()  # its connections may be half-open too
            self.submit_failed.emit("", f"not sent: {connection_message(exc)}")
            return None
        try:
            return send()
        except RequestError as exc:
            self.submit_failed.emit(exc.field, str(exc))
        except Exception as exc:  # kombu raises OperationalError when the task's message could not be sent
            if is_connection_error(exc) or isinstance(exc, OperationalError):
                reason = connection_message(exc)
            else:
                log.warning("submit failed", exc_info=True)
                reason = f"{type(exc).__name__}: {exc}"
            if plot:
                self.submit_failed.emit("", f"plot not sent: {reason}; its jobs already queued were cancelled")
            else:
                self.submit_failed.emit("", f"not confirmed: {reason}; its grid appears if Redis has the job")
                self.unconfirmed.emit()
        return None

    def _probe(self) -> None:
        """Redis answers a PING on a new connection (a pooled one may be half-open) within PROBE_SECONDS."""
        no_retry = Retry(NoBackoff(), 0)
        with connect(
            self.redis_url, socket_connect_timeout=CONNECT_TIMEOUT_SECONDS, socket_timeout=PROBE_SECONDS, retry=no_retry
        ) as probe:
            probe.ping()
