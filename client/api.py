"""The client library: submit jobs, follow them, fetch images, cancel, list jobs and workers."""

import getpass
import socket
import time
import uuid
from collections.abc import Callable, Iterable

import redis

from seedgrid.client import plots
from seedgrid.client.queue_ahead import QUEUE_READ_LIMIT, QueuedJob, read_queues
from seedgrid.shared.celery_config import make_celery
from seedgrid.shared.family_rules import check_family
from seedgrid.shared.job import ImageRecord, JobStatus
from seedgrid.shared.jobstore import JobStore
from seedgrid.shared.lora_syntax import lift_lora_tags
from seedgrid.shared.names import PRIORITIES, TASK_GENERATE, queue_for_model
from seedgrid.shared.plot import Plot
from seedgrid.shared.redis_conn import connect
from seedgrid.shared.request import JobRequest, RequestError, parse_request
from seedgrid.shared.settings import get_settings
from seedgrid.shared.workers import WorkerInfo, allowed_loras_rule, loras_for, served_models, worker_serving

RECONNECT_SECONDS = 0.5
# A Redis that is down or unreachable fails a command within seconds, not minutes.
CONNECT_TIMEOUT_SECONDS = 3
SOCKET_TIMEOUT_SECONDS = 5
CONNECT_RETRIES = 1
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}


class NoWorkerForModel(RequestError):
    """No online worker serves the requested model (or its scheduler)."""


class JobTimeout(TimeoutError):
    def __init__(self, message: str, job_id: str = ""):
        super().__init__(message)
        self.job_id = job_id


class WorkerExited(RuntimeError):
    """The worker waited for exited before it came online; `reason`: its last words, when known."""

    def __init__(self, message: str, reason: str = ""):
        super().__init__(message)
        self.reason = reason


class NoWorkerOnline(TimeoutError):
    """No worker for the model came online in time."""


def default_client_id() -> str:
    return get_settings().client_id or f"{getpass.getuser()}@{socket.gethostname()}"


class SeedgridClient:
    def __init__(self, redis_url: str, client_id: str | None = None):
        self.redis_url = redis_url
        self.client_id = client_id or default_client_id()
        # The shared timeouts and retry policy, with a shorter wait to connect: a person is waiting.
        self.redis = connect(redis_url, socket_connect_timeout=CONNECT_TIMEOUT_SECONDS)
        self.store = JobStore(self.redis)
        self.celery = make_celery(redis_url)
        bounded = {"socket_connect_timeout": CONNECT_TIMEOUT_SECONDS, "socket_timeout": SOCKET_TIMEOUT_SECONDS}
        self.celery.conf.update(
            broker_connection_timeout=CONNECT_TIMEOUT_SECONDS,
            broker_connection_max_retries=CONNECT_RETRIES,
            broker_transport_options={**self.celery.conf.broker_transport_options, **bounded},
            result_backend_transport_options={
                **self.celery.conf.result_backend_transport_options,
                **bounded,
                "retry_policy": PUBLISH_RETRY_POLICY,
            },
            task_publish_retry_policy=PUBLISH_RETRY_POLICY,
        )

    def close(self) -> None:
        self.redis.close()
        self.celery.close()

    def __enter__(self) -> "SeedgridClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def submit(
        self, request: JobRequest | dict, *, require_worker: bool = True, priority: str = "normal", plot_id: str = ""
    ) -> str:
        """Validate and queue a job; returns its id. Nothing is queued when a check fails.

        In a dict, `<lora:NAME:WEIGHT>` tags in the prompts become `loras`, as A1111 reads them."""
        request = parse_request(lift_lora_tags(request) if isinstance(request, dict) else request)
        if priority not in PRIORITIES:
            raise RequestError("priority", f"{priority!r} is not one of {', '.join(PRIORITIES)}")
        if require_worker:
            self._check_served(request)
        job_id = uuid.uuid4().hex
        self.store.create(job_id, request, self.client_id, PRIORITIES[priority], plot_id)
        self.celery.send_task(
            TASK_GENERATE,
            args=[job_id, request.model_dump(mode="json")],
            task_id=job_id,
            queue=queue_for_model(request.model),
            priority=PRIORITIES[priority],
        )
        return job_id

    def status(self, job_id: str) -> JobStatus:
        status = self.store.status(job_id)
        if status is None:
            raise KeyError(f"no job {job_id} (unknown, or expired)")
        return status

    def wait(
        self,
        job_id: str,
        on_update: Callable[[JobStatus], None] | None = None,
        poll_seconds: float = 0.1,
        timeout: float | None = None,
    ) -> JobStatus:
        """Poll until the job finishes; `on_update` sees every status read. Rides out Redis outages."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                status = self.status(job_id)
            except (redis.ConnectionError, redis.TimeoutError):
                if deadline is not None and time.monotonic() > deadline:
                    raise
                time.sleep(RECONNECT_SECONDS)
                continue
            if on_update:
                on_update(status)
            if status.state.finished:
                return status
            if deadline is not None and time.monotonic() > deadline:
                raise JobTimeout(f"job {job_id} still {status.state.value} after {timeout:g} s", job_id)
            try:
                self.store.wait_finished(job_id, poll_seconds)  # returns at once when the job finishes
            except (redis.ConnectionError, redis.TimeoutError):
                time.sleep(RECONNECT_SECONDS)

    def images(self, job_id: str) -> list[ImageRecord]:
        return self.store.images(job_id)

    def image_png(self, job_id: str, index: int) -> bytes:
        png = self.store.png(job_id, index)
        if png is None:
            raise KeyError(f"job {job_id} has no image {index} (not made yet, or expired)")
        return png

    def preview(self, job_id: str, index: int) -> tuple[int, bytes] | None:
        """(step, JPEG bytes) of a running item's latest latent preview, at latent size (1/8 of the image)."""
        return self.store.preview(job_id, index)

    def cancel_plot_id(self, plot_id: str) -> list[JobStatus]:
        """Cancel every job of a plot by its id (from any client); [] when Redis knows no such plot."""
        statuses = []
        for job_id in self.store.plot_job_ids(plot_id):
            try:
                statuses.append(self.cancel(job_id))
            except KeyError:  # expired
                continue
        return statuses

    def cancel(self, job_id: str) -> JobStatus:
        self.status(job_id)
        self.store.request_cancel(job_id)
        return self.status(job_id)

    def submit_plot(self, plot: Plot, *, require_worker: bool = True, priority: str = "normal") -> plots.SubmittedPlot:
        """Queue all the jobs of a plot (shared.plot.make_plot) together, with one priority."""
        return plots.submit_plot(self, plot, require_worker=require_worker, priority=priority)

    def wait_plot(
        self,
        plot: plots.SubmittedPlot,
        on_update: Callable[[plots.PlotProgress], None] | None = None,
        timeout: float | None = None,
    ) -> dict[str, JobStatus]:
        """Job id -> final status once every job of the plot has finished; PlotTimeout after `timeout` s."""
        return plots.wait_plot(self, plot, on_update=on_update, timeout=timeout)

    def cancel_plot(self, plot: plots.SubmittedPlot) -> list[JobStatus]:
        """Cancel every job of the plot."""
        return plots.cancel_plot(self, plot)

    def jobs(self, limit: int = 50) -> list[JobStatus]:
        """This client's jobs, newest first; expired ones are skipped."""
        statuses = (self.store.status(job_id) for job_id in self.store.client_job_ids(self.client_id, limit))
        return [s for s in statuses if s is not None]

    def workers(self) -> list[WorkerInfo]:
        return self.store.workers()

    def queues(self, models: Iterable[str], limit: int = QUEUE_READ_LIMIT) -> dict[str, list[QueuedJob]]:
        """Model -> every client's jobs in its queue, in the order the workers take them, then its running jobs
        (client/queue_ahead.py); two round trips for all the models."""
        return read_queues(self.redis, models, limit)

    def models(self) -> dict[str, list[str]]:
        """Model name -> schedulers, for every model an online worker serves."""
        return served_models(self.workers())

    def wait_for_worker(
        self, model: str | None, timeout: float = 120.0, alive: Callable[[], bool] | None = None
    ) -> WorkerInfo:
        """The first online worker serving `model` (None: any model), waiting up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for worker in self.workers():
                if model is None or worker.serves(model):
                    return worker
            if alive and not alive():
                raise WorkerExited(f"the worker for {model or 'any model'} exited before it came online")
            time.sleep(0.2)
        raise NoWorkerOnline(f"no worker for {model or 'any model'} came online within {timeout:.0f} s")

    def _check_served(self, request: JobRequest) -> None:
        workers = self.workers()
        worker = worker_serving(workers, request.model)
        if worker is None:
            online = ", ".join(sorted(served_models(workers))) or "none"
            raise NoWorkerForModel("model", f"no online worker serves {request.model!r} (online: {online})")
        if request.scheduler not in worker.schedulers:
            raise NoWorkerForModel(
                "scheduler",
                f"{request.scheduler} is not available for {request.model}",
                rule="one of " + ", ".join(worker.schedulers),
            )
        check_family(request, worker.family, worker.negative_prompt, worker.size_multiple)
        allowed = loras_for(workers, request.model)
        for lora in request.loras:
            if lora.name not in allowed:
                problem = f"{lora.name!r} is not allowed by a worker of {request.model}"
                raise NoWorkerForModel("loras", problem, rule=allowed_loras_rule(allowed))
