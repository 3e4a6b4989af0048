"""A stand-in worker for the app's tests: it advertises a model and finishes jobs by writing their
records through JobStore, as a worker does, so the app is driven against real Redis in seconds."""

from collections.abc import Iterator
from contextlib import contextmanager

from PIL import Image

from seedgrid.shared import names
from seedgrid.shared.job import ImageRecord, JobState
from seedgrid.shared.jobstore import JobStore
from seedgrid.shared.pngmeta import encode_png
from seedgrid.shared.redis_conn import connect
from seedgrid.shared.request import JobRequest
from seedgrid.shared.workers import WorkerInfo

NAME = "stand-in"


def shaded_png(request: JobRequest, index: int, shade: int) -> bytes:
    """A 64x64 PNG of item `index` with its metadata; its red channel is index * shade (0: black)."""
    colour = (index * shade % 256, 90, 140) if shade else (0, 0, 0)
    return encode_png(Image.new("RGB", (64, 64), colour), request, request.items()[index])


class StandInWorker:
    def __init__(self, url: str, model: str, schedulers: tuple[str, ...] = ("euler_a",), shade: int = 0):
        self.redis = connect(url)
        self.store = JobStore(self.redis)
        self.model, self.schedulers, self.shade = model, list(schedulers), shade

    def register(self) -> None:
        info = WorkerInfo(
            name=NAME, host="here", pid=1, model=self.model, device="cpu", schedulers=self.schedulers, max_batch=4
        )
        self.redis.set(names.worker_key(info.name), info.model_dump_json(), ex=60)
        self.redis.sadd(names.WORKERS_KEY, info.name)

    def finish(self, job_id: str) -> None:
        status = self.store.status(job_id)
        assert status is not None and status.request is not None
        self.store.mark_started(job_id, NAME)
        for item in status.request.items():
            record = ImageRecord(
                job_id=job_id, index=item.index, row=0, col=item.index, prompt=item.prompt, seed=item.seed,
                worker=NAME, seconds=0.1,
            )  # fmt: skip
            self.store.store_image(record, shaded_png(status.request, item.index, self.shade))
        self.store.finish(job_id, JobState.SUCCEEDED)


@contextmanager
def registered(
    url: str, model: str, schedulers: tuple[str, ...] = ("euler_a",), shade: int = 0
) -> Iterator[StandInWorker]:
    """A stand-in worker advertised on `url` for the duration, as the app tests' `worker` fixture."""
    stand_in = StandInWorker(url, model, schedulers, shade)
    stand_in.register()
    try:
        yield stand_in
    finally:
        stand_in.redis.close()
