"""Every client's jobs in a model's queue, in the order the workers take them.

A job waits in names.queued_key(model), scored by when it was last queued (a large job's next turn goes to
the back), and leaves it when a worker starts it. The Redis transport serves the lowest priority number
first, then the longest queued. Running jobs are the leased ones (names.LEASES_KEY, of every model). All
of it is read in two pipelined round trips, whatever the number of models.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass

import redis
from pydantic import ValidationError

from seedgrid.shared import names
from seedgrid.shared.job import JobState, JobStatus
from seedgrid.shared.replies import text

QUEUE_READ_LIMIT = 1000  # queued jobs read per model, the longest queued first; and leased jobs in all
FIELDS = ("state", "client_id", "priority", "images_total", "images_done", "steps", "step", "batch_size")
RUNNING = (JobState.STARTED, JobState.RUNNING)


@dataclass(frozen=True)
class QueuedJob:
    """A job of any client, queued since `queued_at` (0 for a running one), with the images it has left."""

    job_id: str
    client_id: str
    state: JobState
    priority: int
    queued_at: float
    images_left: float

    @property
    def order(self) -> tuple[int, float, str]:
        """The workers take the smallest first."""
        return (self.priority, self.queued_at, self.job_id)


def read_queues(
    client: redis.Redis, models: Iterable[str], limit: int = QUEUE_READ_LIMIT
) -> dict[str, list[QueuedJob]]:
    """Model -> its queued jobs in the order the workers take them, then its running jobs."""
    wanted = sorted(set(models))
    if not wanted:
        return {}
    with client.pipeline(transaction=False) as p:
        for model in wanted:
            p.zrange(names.queued_key(model), 0, limit - 1, withscores=True)
        p.zrange(names.LEASES_KEY, 0, limit - 1)
        *queued, leased = p.execute()
    leased = [text(job_id) for job_id in leased]
    with client.pipeline(transaction=False) as p:
        for members in queued:
            for job_id, _ in members:
                p.hmget(names.job_key(text(job_id)), FIELDS)
        for job_id in leased:
            p.hmget(names.job_key(job_id), [*FIELDS, "request"])
        replies = iter(p.execute())
    found: dict[str, list[QueuedJob]] = {}
    for model, members in zip(wanted, queued, strict=True):
        jobs = (_job(text(job_id), next(replies), score) for job_id, score in members)
        found[model] = sorted((j for j in jobs if j and j.state == JobState.QUEUED), key=lambda j: j.order)
    for job_id in leased:
        *values, request = next(replies)
        job, model = _job(job_id, values, 0.0), _model(request)
        if job and job.state in RUNNING and model in found:
            found[model].append(job)
    return found


def _job(job_id: str, values: list, queued_at: float) -> QueuedJob | None:
    """None for a job whose record expired or does not read."""
    fields = {name: text(v) for name, v in zip(FIELDS, values, strict=True) if v is not None}
    if "state" not in fields:
        return None
    try:
        status = JobStatus.model_validate({**fields, "job_id": job_id})
    except ValidationError:
        return None
    left = status.images_total * (1 - status.progress)
    return QueuedJob(job_id, status.client_id, status.state, status.priority, queued_at, left)


def _model(request: bytes | str | None) -> str:
    try:
        model = json.loads(text(request))["model"] if request else ""
    except (ValueError, TypeError, KeyError):
        return ""
    return model if isinstance(model, str) else ""
