"""Fetch a finished job's images and write them, with the grid, to a folder."""

import io
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from seedgrid.client.api import SeedgridClient
from seedgrid.shared.grid import grid_for_job
from seedgrid.shared.job import JobStatus


@dataclass
class SavedJob:
    paths: list[Path]
    grid_path: Path | None
    fetch_seconds: float


def image_filename(prefix: str, index: int, seed: int) -> str:
    return f"{prefix}-{index:03d}-seed{seed}.png"


def save_job(
    client: SeedgridClient, status: JobStatus, out_dir: Path, prefix: str, grid_name: str | None = "grid.png"
) -> SavedJob:
    """Write every image of the job as its own PNG (metadata kept) and, if asked, the grid."""
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths, images = [], {}
    for record in client.images(status.job_id):
        png = client.image_png(status.job_id, record.index)
        path = out_dir / image_filename(prefix, record.index, record.seed)
        path.write_bytes(png)
        paths.append(path)
        images[record.index] = Image.open(io.BytesIO(png))
    grid_path = None
    if grid_name and images and status.request is not None:
        grid_path = out_dir / grid_name
        grid_for_job(status.request, images).save(grid_path)
    return SavedJob(paths, grid_path, time.perf_counter() - started)
