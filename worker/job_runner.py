"""One delivery of a job: validate, resume what is missing, take in compatible jobs, run the turn, report."""

import logging
import time
import uuid
from collections.abc import Callable

from seedgrid.shared.job import JobState
from seedgrid.shared.names import queue_for_model
from seedgrid.shared.request import JobRequest, RequestError, parse_request
from seedgrid.worker.hand_over import idle_worker_with
from seedgrid.worker.merging import Resend, give_back, take_in
from seedgrid.worker.model_shelf import ModelShelf
from seedgrid.worker.redis_retry import if_redis_answers, until_redis_returns
from seedgrid.worker.runtime import WorkerRuntime
from seedgrid.worker.turn import TurnJob, run_turn

log = logging.getLogger(__name__)

# Deliveries of one turn before a job that keeps killing its worker is failed instead of retried.
MAX_DELIVERIES = 3
CONTRACT = "docs/contract.md"
NO_RECORD = f"job: no record in Redis (never written, or expired); write it before sending the task ({CONTRACT})"


def finished(job_id: str, state: JobState, **extra) -> dict:
    return {"job_id": job_id, "state": state.value, **extra}


def run_job(
    runtime: WorkerRuntime,
    job_id: str,
    raw_request: object,
    turn: int = 0,
    requeue: Callable[[int], None] | None = None,
    resend: Resend | None = None,
    queue: str | None = None,
    hand_over: Callable[[], None] | None = None,
) -> dict:
    """Run one turn of a job: one batch (or `runtime.turn_images` images), then `requeue` the rest.

    Turns let other clients' jobs in between the batches of a large job; each turn resumes
    from the images already stored, as a job redelivered after a worker died does. With
    `resend` (how a job's task is sent again), room left in the batch is filled with
    compatible queued jobs of other clients (dynamic batching). A delivery from any `queue` but
    the one of the worker's model, or of a job with no record, is refused (see docs/contract.md). With
    `hand_over` (sends the task once more), a job for a model this worker has not loaded goes to an idle
    worker that has it loaded (worker/hand_over.py).
    """
    store, engine = runtime.store, runtime.engine
    if queue and queue not in {queue_for_model(model) for model in runtime.model_names}:
        return misrouted(runtime, job_id, raw_request, queue)
    # Every call from here to the turn waits for Redis (a bounded time, then the delivery is requeued).
    current = until_redis_returns(store.status, job_id)
    if current is not None and current.state.finished:  # a duplicate delivery of a finished job
        return finished(job_id, current.state)
    if until_redis_returns(store.is_cancelled, job_id):
        until_redis_returns(store.finish, job_id, JobState.CANCELLED)
        return finished(job_id, JobState.CANCELLED)
    try:
        request = parse_request(raw_request)
        if hand_over is not None and (other := until_redis_returns(idle_worker_with, runtime, request.model)):
            log.info("job %s: worker %s has %s loaded and is idle; handed over to it", job_id, other, request.model)
            until_redis_returns(hand_over)
            return finished(job_id, JobState.QUEUED, handed_to=other)
        if isinstance(engine, ModelShelf):  # a model not on the device loads once the job has started
            engine.check(request, load=False)
        else:
            engine.check(request)
    except RequestError as exc:
        log.warning("job %s refused: %s", job_id, exc)
        if current is not None or not until_redis_returns(store.refuse, job_id, str(exc)):
            until_redis_returns(store.finish, job_id, JobState.FAILED, str(exc))
        return finished(job_id, JobState.FAILED, error=str(exc))
    if current is None and until_redis_returns(store.refuse, job_id, NO_RECORD):
        log.warning("job %s refused: %s", job_id, NO_RECORD)
        return finished(job_id, JobState.FAILED, error=NO_RECORD)
    if not until_redis_returns(runtime.pool.start_own, job_id, runtime.name, request, turn):
        # A live worker holds the job's lease (a second message of a job taken over, or one running inside
        # another job's batch), or this is a lost worker's message of a turn already done. Acknowledged.
        log.info("job %s is leased by a live worker or past turn %d; acknowledged without running", job_id, turn)
        state = current.state if current is not None else JobState.RUNNING
        return finished(job_id, state, merged_into=current.merged_into if current else "")
    held = [job_id]
    runtime.held.add(job_id)
    try:
        if current is not None and current.merged_jobs and resend is not None:
            give_back(runtime, job_id, resend)
        result = run_leased(runtime, job_id, request, turn, held, requeue, resend)
    finally:
        runtime.held.discard(*held)  # after an error, the lease lapses and a live worker takes the job over
    if_redis_answers(runtime.leases.release, held, runtime.name)
    return result


def run_leased(
    runtime: WorkerRuntime,
    job_id: str,
    request: JobRequest,
    turn: int,
    held: list[str],
    requeue: Callable[[int], None] | None,
    resend: Resend | None,
) -> dict:
    """The delivery of a job whose lease this worker holds (`held`: the jobs it holds leases on)."""
    store, engine = runtime.store, runtime.engine
    loading = isinstance(engine, ModelShelf) and request.model not in engine.loaded
    phase = f"loading model {request.model}" if loading else ""
    deliveries = until_redis_returns(store.mark_started, job_id, runtime.name, turn, phase)
    if deliveries > MAX_DELIVERIES:
        message = f"the job stopped its worker {deliveries - 1} times and is not tried again"
        log.error("job %s: %s", job_id, message)
        until_redis_returns(store.finish, job_id, JobState.FAILED, message)
        return finished(job_id, JobState.FAILED, error=message)
    if loading:  # the heartbeat says so; a load is not a hung GPU loop for the stuck watchdog
        runtime.busy, runtime.current_job, runtime.loading = True, job_id, request.model
    load_started = time.monotonic()
    try:
        # Loads the job's model if `phase` says so (its record shows it; the lease keeper renews the lease
        # meanwhile, so a worker that dies loading loses no job); the first step clears the phase.
        engine.check(request)
    except RequestError as exc:
        log.warning("job %s failed: %s", job_id, exc)
        until_redis_returns(store.finish, job_id, JobState.FAILED, str(exc))
        return finished(job_id, JobState.FAILED, error=str(exc))
    except Exception:  # out of memory, a broken file: the job is started, so it must end, not wait for ever
        error_id = uuid.uuid4().hex[:8]
        log.exception("job %s: loading model %s failed (error id %s)", job_id, request.model, error_id)
        message = f"the worker could not load model {request.model} (error id {error_id}; details in its log)"
        until_redis_returns(store.finish, job_id, JobState.FAILED, message)
        return finished(job_id, JobState.FAILED, error=message)
    finally:
        if loading:
            runtime.busy, runtime.current_job, runtime.loading = False, "", ""
    if loading:
        until_redis_returns(store.loaded, job_id, time.monotonic() - load_started)
    done = until_redis_returns(store.stored_indices, job_id)
    pending = [item for item in request.items() if item.index not in done]
    limit = engine.max_batch if runtime.turn_images is None else runtime.turn_images
    this_turn = pending[:limit] if limit and requeue else pending
    log.info(
        "job %s turn %d (delivery %d): %d of %d images left, %d this turn",
        job_id,
        turn,
        deliveries,
        len(pending),
        len(request.items()),
        len(this_turn),
    )
    host = TurnJob(job_id, request, this_turn, images_done=len(done))
    jobs = [host]
    if runtime.merge and resend is not None and deliveries == 1:
        jobs += take_in(runtime, job_id, request, engine.max_batch - len(this_turn))
        held += [job.job_id for job in jobs[1:]]
        runtime.held.add(*held)
    run_turn(runtime, jobs)
    for job in jobs[1:]:
        if job.outcome is None:
            until_redis_returns(store.finish, job.job_id, JobState.SUCCEEDED)
            runtime.jobs_done += 1
    if len(jobs) > 1:  # only now: a worker that dies before this point leaves them to the host's redelivery
        until_redis_returns(runtime.pool.done, job_id)
    if host.outcome is not None:
        return finished(job_id, host.outcome, error=host.error)
    if len(this_turn) < len(pending):
        until_redis_returns(store.requeued, job_id, turn + 1, request.model)
        until_redis_returns(requeue, turn + 1)
        return finished(job_id, JobState.QUEUED, images_done=host.images_done)
    until_redis_returns(store.finish, job_id, JobState.SUCCEEDED)
    runtime.jobs_done += 1
    return finished(job_id, JobState.SUCCEEDED, images=[record.model_dump() for record in store.images(job_id)])


def misrouted(runtime: WorkerRuntime, job_id: str, raw_request: object, queue: str) -> dict:
    """A task from another queue than its model's (Celery's default, when none was named): a queued job
    fails saying where to send it; a job running elsewhere or finished is not touched."""
    model = raw_request.get("model") if isinstance(raw_request, dict) else None
    where = (
        f"the queue of model {model[:80]!r} is {queue_for_model(model[:80])!r}"
        if isinstance(model, str) and model
        else f"the queue of a model is {queue_for_model('MODEL')!r}"
    )
    message = f"queue: the task was sent to {queue[:80]!r}, not to its model's queue; {where} ({CONTRACT})"
    if until_redis_returns(runtime.store.refuse, job_id, message, queued_too=True):
        log.warning("job %s refused: %s", job_id, message)
        return finished(job_id, JobState.FAILED, error=message)
    current = until_redis_returns(runtime.store.status, job_id)
    state = current.state if current is not None else JobState.FAILED
    log.warning("job %s: a second task on %r ignored; the job is %s", job_id, queue[:80], state.value)
    return finished(job_id, state)
