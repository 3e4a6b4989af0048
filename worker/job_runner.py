"""One job from start to end: validate, resume what is missing, generate, store, report."""

import logging
import time
import uuid
from collections.abc import Callable, Sequence

from PIL import Image

from shared.job import ImageRecord, JobState
from shared.pngmeta import encode_png
from shared.request import Item, RequestError, parse_request
from worker.cancel import JobCancelled
from worker.redis_retry import if_redis_answers, until_redis_returns
from worker.runtime import WorkerRuntime

log = logging.getLogger(__name__)

# Deliveries of one turn before a job that keeps killing its worker is failed instead of retried.
MAX_DELIVERIES = 3


def finished(job_id: str, state: JobState, **extra) -> dict:
    return {"job_id": job_id, "state": state.value, **extra}


def run_job(runtime: WorkerRuntime, job_id: str, raw_request: object, turn: int = 0,
            requeue: Callable[[int], None] | None = None) -> dict:
    """Run one turn of a job: one batch (or `runtime.turn_images` images), then `requeue` the rest.

    Turns let other clients' jobs in between the batches of a large job; each turn resumes
    from the images already stored, as a job redelivered after a worker died does.
    """
    store, engine = runtime.store, runtime.engine
    current = store.status(job_id)
    if current is not None and current.state.finished:  # a duplicate delivery of a finished job
        return finished(job_id, current.state)
    if store.is_cancelled(job_id):
        store.finish(job_id, JobState.CANCELLED)
        return finished(job_id, JobState.CANCELLED)
    try:
        request = parse_request(raw_request)
        engine.check(request)
    except RequestError as exc:
        log.warning("job %s refused: %s", job_id, exc)
        store.finish(job_id, JobState.FAILED, str(exc))
        return finished(job_id, JobState.FAILED, error=str(exc))

    deliveries = store.mark_started(job_id, runtime.name, turn)
    if deliveries > MAX_DELIVERIES:
        message = f"the job stopped its worker {deliveries - 1} times and is not tried again"
        log.error("job %s: %s", job_id, message)
        store.finish(job_id, JobState.FAILED, message)
        return finished(job_id, JobState.FAILED, error=message)
    done = store.stored_indices(job_id)
    pending = [item for item in request.items() if item.index not in done]
    limit = engine.max_batch if runtime.turn_images is None else runtime.turn_images
    this_turn = pending[:limit] if limit and requeue else pending
    log.info("job %s turn %d (delivery %d): %d of %d images left, %d this turn",
             job_id, turn, deliveries, len(pending), len(request.items()), len(this_turn))
    failed: list[Item] = []
    images_done = len(done)

    def on_step(step: int, steps: int, batch_size: int) -> None:
        if if_redis_answers(store.progress, job_id, step, steps, batch_size, images_done, default=False):
            raise JobCancelled(job_id)

    def on_preview(batch: Sequence[Item], step: int, images: list[Image.Image]) -> None:
        from worker.preview import encode_preview  # torch lives there; only real engines make previews

        for item, image in zip(batch, images):
            if_redis_answers(store.store_preview, job_id, item.index, step, encode_preview(image))

    def on_batch(batch: Sequence[Item], images: list[Image.Image | None]) -> None:
        nonlocal images_done
        seconds = (time.time() - started) / max(1, images_done + len(batch) - len(done))
        for item, image in zip(batch, images):
            if image is None:
                failed.append(item)
                continue
            record = ImageRecord(job_id=job_id, index=item.index, row=item.row, col=item.col, prompt=item.prompt,
                                 seed=item.seed, worker=runtime.name, seconds=round(seconds, 4))
            png = encode_png(image, request, item, extra={"job_id": job_id, "worker": runtime.name, "vae": runtime.vae})
            until_redis_returns(store.store_image, record, png)
        images_done += len(batch)

    started = time.time()
    runtime.busy, runtime.current_job = True, job_id
    try:
        engine.run(request, this_turn, on_step, on_batch, on_preview)
    except JobCancelled:
        store.finish(job_id, JobState.CANCELLED)
        return finished(job_id, JobState.CANCELLED)
    except Exception:
        error_id = uuid.uuid4().hex[:8]
        log.exception("job %s failed (error id %s)", job_id, error_id)
        message = f"the worker failed while generating (error id {error_id}; details in the worker's log)"
        store.finish(job_id, JobState.FAILED, message)
        return finished(job_id, JobState.FAILED, error=message)
    finally:
        runtime.busy, runtime.current_job = False, ""

    if failed:
        seeds = ", ".join(str(item.seed) for item in failed)
        message = f"{len(failed)} image(s) came out NaN or black even with the VAE in float32 (seeds {seeds})"
        store.finish(job_id, JobState.FAILED, message)
        return finished(job_id, JobState.FAILED, error=message)
    if len(this_turn) < len(pending):
        until_redis_returns(store.requeued, job_id)
        until_redis_returns(requeue, turn + 1)
        return finished(job_id, JobState.QUEUED, images_done=images_done)
    until_redis_returns(store.finish, job_id, JobState.SUCCEEDED)
    runtime.jobs_done += 1
    return finished(job_id, JobState.SUCCEEDED, images=[record.model_dump() for record in store.images(job_id)])
