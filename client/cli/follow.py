"""Submit one job, follow it with a progress bar, and save what it made."""

from pathlib import Path

from seedgrid.client.api import SeedgridClient
from seedgrid.client.cli.errors import JobInterrupted
from seedgrid.client.cli.progress import ProgressBar
from seedgrid.client.save import SavedJob, save_job
from seedgrid.shared.job import JobStatus
from seedgrid.shared.request import JobRequest


def run_to_folder(
    client: SeedgridClient,
    request: JobRequest,
    out: Path,
    label: str,
    grid_name: str | None,
    prefix: str | None = None,
    require_worker: bool = True,
    priority: str = "normal",
    timeout: float | None = None,
) -> tuple[JobStatus, SavedJob]:
    """Raises RequestError before anything is queued when the request cannot be served, JobTimeout when
    `timeout` runs out (the job goes on), and JobInterrupted after Ctrl+C cancelled the job."""
    job_id = client.submit(request, require_worker=require_worker, priority=priority)
    bar = ProgressBar(f"{label} {job_id[:8]}")
    try:
        status = client.wait(job_id, on_update=bar.update, timeout=timeout)
    except KeyboardInterrupt:
        client.cancel(job_id)
        raise JobInterrupted(job_id) from None
    finally:
        bar.close()
    return status, save_job(client, status, out, prefix or job_id[:8], grid_name)
