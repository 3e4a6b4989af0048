"""One turn on the GPU: the items of one job, and of the jobs merged into its batch, generated and stored."""

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from PIL import Image

from seedgrid.shared.job import ImageRecord, JobState
from seedgrid.shared.pngmeta import encode_png
from seedgrid.shared.request import Item, JobRequest, RequestError
from seedgrid.worker.cancel import JobCancelled
from seedgrid.worker.memory import OutOfMemory
from seedgrid.worker.redis_retry import if_redis_answers, until_redis_returns
from seedgrid.worker.runtime import WorkerRuntime

log = logging.getLogger(__name__)


class JobItem(Item):
    """An item that knows its job, so one batch can hold the items of several jobs."""

    job_id: str


@dataclass
class TurnJob:
    job_id: str
    request: JobRequest
    items: list[Item]  # what this turn makes of the job
    images_done: int = 0  # stored before and during this turn
    merged: bool = False  # taken in from the pool, into another job's batch
    failed: list[Item] = field(default_factory=list)
    outcome: JobState | None = None  # set once the job has finished in this turn (cancelled or failed)
    error: str = ""  # why it failed, as stored in its record


def run_turn(runtime: WorkerRuntime, jobs: list[TurnJob]) -> None:
    """Generate every job's items in shared batches; each job ends cancelled, failed, or with its images stored.

    A cancelled job finishes at once and its images are dropped; the batch only stops when every
    job in it is cancelled. An error fails every job still in the turn.
    """
    store, engine, host = runtime.store, runtime.engine, jobs[0]
    by_id = {job.job_id: job for job in jobs}
    work = [JobItem(job_id=job.job_id, **item.model_dump()) for job in jobs for item in job.items]
    started, processed = time.time(), 0

    def live(batch: Sequence[JobItem]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for item in batch:
            if by_id[item.job_id].outcome is None:
                counts[item.job_id] = counts.get(item.job_id, 0) + 1
        return counts

    def on_step(step: int, steps: int, batch: Sequence[JobItem]) -> None:
        runtime.progressed()
        counts = live(batch)
        report = [(job_id, by_id[job_id].images_done, n) for job_id, n in counts.items()]
        cancelled = if_redis_answers(store.progress, report, step, steps, default=set())
        for job_id in cancelled:
            finish(by_id[job_id], JobState.CANCELLED)
        if all(job.outcome is not None for job in jobs):
            raise JobCancelled(host.job_id)

    def on_preview(batch: Sequence[JobItem], step: int, images: list[Image.Image]) -> None:
        from seedgrid.worker.preview import encode_preview  # torch lives there; only real engines make previews

        for item, image in zip(batch, images, strict=True):
            if by_id[item.job_id].outcome is None:
                if_redis_answers(store.store_preview, item.job_id, item.index, step, encode_preview(image))

    def on_batch(batch: Sequence[JobItem], images: list[Image.Image | None]) -> None:
        nonlocal processed
        runtime.progressed()
        processed += len(batch)
        seconds = (time.time() - started) / processed
        for item, image in zip(batch, images, strict=True):
            job = by_id[item.job_id]
            if job.outcome is not None:
                continue
            if image is None:
                job.failed.append(item)
                continue
            record = ImageRecord(
                job_id=job.job_id,
                index=item.index,
                row=item.row,
                col=item.col,
                prompt=item.prompt,
                seed=item.seed,
                worker=runtime.name,
                seconds=round(seconds, 4),
            )
            png = encode_png(
                image,
                job.request,
                item,
                extra={"job_id": job.job_id, "worker": runtime.name, "vae": runtime.vae},
                family=runtime.family_of(job.request.model),
                model_hash=runtime.model_hash(job.request.model),
                lora_hashes=runtime.lora_hashes(job.request),
            )
            until_redis_returns(store.store_image, record, png)
            job.images_done += 1

    def finish(job: TurnJob, state: JobState, error: str = "") -> None:
        job.outcome, job.error = state, error
        until_redis_returns(store.finish, job.job_id, state, error)

    runtime.progressed()
    runtime.busy, runtime.current_job = True, host.job_id
    try:
        engine.run(host.request, work, on_step, on_batch, on_preview)
    except JobCancelled:
        return
    # Too large even at batch 1, or a LoRA that does not fit the model: jobs sharing a batch share both.
    except (OutOfMemory, RequestError) as exc:
        log.warning("job %s: %s", host.job_id, exc)
        for job in jobs:
            if job.outcome is None:
                finish(job, JobState.FAILED, str(exc))
        return
    except Exception:
        error_id = uuid.uuid4().hex[:8]
        log.exception("job %s failed (error id %s)", host.job_id, error_id)
        message = f"the worker failed while generating (error id {error_id}; details in the worker's log)"
        for job in jobs:
            if job.outcome is None:
                finish(job, JobState.FAILED, message)
        return
    finally:
        runtime.busy, runtime.current_job = False, ""
    for job in jobs:
        if job.outcome is None and job.failed:
            seeds = ", ".join(str(item.seed) for item in job.failed)
            finish(
                job,
                JobState.FAILED,
                f"{len(job.failed)} image(s) came out NaN or black even with the VAE in float32 (seeds {seeds})",
            )
