"""Dynamic batching on the worker: take compatible queued jobs into a batch; give them back if it died."""

import json
import logging
from collections.abc import Callable

from seedgrid.shared.job import JobState
from seedgrid.shared.orphans import index_queued
from seedgrid.shared.request import JobRequest, RequestError, parse_request
from seedgrid.worker.redis_retry import until_redis_returns
from seedgrid.worker.runtime import WorkerRuntime
from seedgrid.worker.turn import TurnJob

log = logging.getLogger(__name__)

# Sends a job's task again: (job id, request, priority or None for the default).
Resend = Callable[[str, dict, int | None], None]


def take_in(runtime: WorkerRuntime, host_id: str, request: JobRequest, room: int) -> list[TurnJob]:
    """Claim queued jobs that fit in `room` images of the host's batch, best priority and oldest first."""
    taken = []
    for job_id, raw, _priority in until_redis_returns(runtime.pool.claim, host_id, runtime.name, request, room):
        try:
            other = parse_request(json.loads(raw))
            runtime.engine.check(other)
            if other.batch_key() != request.batch_key():
                raise RequestError("request", "its settings differ from the batch it was merged into")
        except (ValueError, RequestError) as exc:
            log.warning("job %s refused: %s", job_id, exc)
            until_redis_returns(runtime.store.finish, job_id, JobState.FAILED, str(exc))
            continue
        taken.append(TurnJob(job_id, other, other.items(), merged=True))
    if taken:
        log.info(
            "job %s takes %d queued job(s) into its batch: %s",
            host_id,
            len(taken),
            ", ".join(job.job_id for job in taken),
        )
    return taken


def give_back(runtime: WorkerRuntime, host_id: str, resend: Resend) -> None:
    """The host's last delivery died with other jobs in its batch: queue the unfinished ones again."""
    for job_id, raw, priority in until_redis_returns(runtime.pool.release, host_id):
        log.warning("job %s was in job %s's batch when its worker stopped; queued again", job_id, host_id)
        model = str(json.loads(raw).get("model", ""))
        until_redis_returns(index_queued, runtime.store.redis, job_id, model, runtime.store.ttl)
        until_redis_returns(resend, job_id, json.loads(raw), priority)
