"""Plots through the queue: submit a plot's jobs together, follow them as one, cancel them, save them."""

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import redis

from seedgrid.shared.job import JobState, JobStatus
from seedgrid.shared.names import PRIORITIES
from seedgrid.shared.plot import Plot
from seedgrid.shared.request import RequestError

if TYPE_CHECKING:
    from seedgrid.client.api import SeedgridClient

RECONNECT_SECONDS = 0.5


@dataclass
class SubmittedPlot:
    plot_id: str
    plot: Plot
    job_ids: list[str]  # one per plot.jobs entry
    submitted_at: float = field(default_factory=time.time)

    def cell_job(self, cell: int) -> tuple[str, int]:
        """(job id, item index) of the cell's image."""
        place = self.plot.placements[cell]
        return self.job_ids[place.job], place.index


class PlotTimeout(TimeoutError):
    def __init__(self, message: str, plot: SubmittedPlot):
        super().__init__(message)
        self.plot = plot


@dataclass(frozen=True)
class PlotProgress:
    cells_done: int
    cells_total: int
    images_done: float  # fractional: running batches count by their steps
    images_total: int
    images_per_second: float | None  # None until an image is done
    seconds_left: float | None
    finished: bool


def submit_plot(
    client: "SeedgridClient", plot: Plot, *, require_worker: bool = True, priority: str = "normal"
) -> SubmittedPlot:
    """Queue every job of the plot with one priority; nothing is queued when a check fails."""
    if priority not in PRIORITIES:
        raise RequestError("priority", f"{priority!r} is not one of {', '.join(PRIORITIES)}")
    if require_worker:
        # One check per model, scheduler and set of LoRAs (a model or LoRA axis varies them).
        for request in {(r.model, r.scheduler, tuple(lora.name for lora in r.loras)): r for r in plot.jobs}.values():
            client._check_served(request)
    submitted = SubmittedPlot(uuid.uuid4().hex, plot, [])
    try:
        for request in plot.jobs:
            job_id = client.submit(request, require_worker=False, priority=priority, plot_id=submitted.plot_id)
            submitted.job_ids.append(job_id)
    except BaseException:
        for job_id in submitted.job_ids:  # all or nothing: a half-queued plot helps nobody
            client.store.request_cancel(job_id)
        raise
    return submitted


def cancel_plot(client: "SeedgridClient", submitted: SubmittedPlot) -> list[JobStatus]:
    """Cancel every job of the plot (finished ones stay as they were); their statuses after."""
    return [client.cancel(job_id) for job_id in submitted.job_ids]


def plot_progress(submitted: SubmittedPlot, statuses: dict[str, JobStatus], now: float | None = None) -> PlotProgress:
    now = time.time() if now is None else now
    cells_per_job = [0] * len(submitted.job_ids)
    for place in submitted.plot.placements:
        cells_per_job[place.job] += 1
    cells = images = 0.0
    total = 0
    for job_id, cell_count, request in zip(submitted.job_ids, cells_per_job, submitted.plot.jobs, strict=True):
        job_images = len(request.prompts) * len(request.seeds)
        total += job_images
        status = statuses.get(job_id)
        if status is None:
            continue
        fraction = 1.0 if status.state.finished else status.progress
        images += fraction * job_images
        cells += cell_count if status.state.finished else int(fraction * cell_count)
    started = [s.started_at for s in statuses.values() if s.started_at]
    elapsed = now - min(started) if started else 0.0
    rate = images / elapsed if images and elapsed > 0 else None
    finished = len(statuses) == len(submitted.job_ids) and all(s.state.finished for s in statuses.values())
    left = (total - images) / rate if rate else None
    return PlotProgress(int(cells), len(submitted.plot.cells), images, total, rate, left, finished)


def wait_plot(
    client: "SeedgridClient",
    submitted: SubmittedPlot,
    on_update: Callable[[PlotProgress], None] | None = None,
    poll_seconds: float = 0.2,
    timeout: float | None = None,
) -> dict[str, JobStatus]:
    """Poll until every job of the plot has finished; job id -> final status. Rides out Redis outages."""
    deadline = None if timeout is None else time.monotonic() + timeout
    statuses: dict[str, JobStatus] = {}
    while True:
        try:
            for job_id in submitted.job_ids:
                if job_id not in statuses or not statuses[job_id].state.finished:
                    statuses[job_id] = client.status(job_id)
        except (redis.ConnectionError, redis.TimeoutError):
            if deadline is not None and time.monotonic() > deadline:
                raise
            time.sleep(RECONNECT_SECONDS)
            continue
        progress = plot_progress(submitted, statuses)
        if on_update:
            on_update(progress)
        if progress.finished:
            return statuses
        if deadline is not None and time.monotonic() > deadline:
            raise PlotTimeout(
                f"plot {submitted.plot_id[:8]} has {progress.cells_done}/{progress.cells_total} cells "
                f"after {timeout:g} s",
                submitted,
            )
        time.sleep(poll_seconds)


def plot_state(statuses: dict[str, JobStatus]) -> JobState:
    """Succeeded when every job did; else cancelled or failed as the first job that did not."""
    for status in statuses.values():
        if status.state != JobState.SUCCEEDED:
            return status.state
    return JobState.SUCCEEDED
