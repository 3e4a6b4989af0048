"""Grids kept on disk (the platform's data folder), so history survives restarts and Redis expiry.

A grid is a folder named by its job id: request.json, meta.json (when made, its name, its last state),
NNN.png per image and a small thumb.png. Listing reads only the JSON files; PNGs are read when shown.
A plot's layer is a grid too, named by an id of its own: request.json holds the plot's base request, meta.json
its axes and jobs (`plot`) and their last states (`plot_jobs`), NNN.png the image of cell NNN."""

import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from seedgrid.shared.job import JobStatus
from seedgrid.shared.request import JobRequest, RequestError, parse_request

REQUEST_FILE = "request.json"
META_FILE = "meta.json"
THUMB_FILE = "thumb.png"
FORGOTTEN_FILE = "forgotten.txt"  # deleted or dropped job ids: not taken back from Redis
FORGOTTEN_KEPT = 1000
JOB_ID = re.compile(r"^[0-9a-f]{8,64}$")
PNG_NAME = re.compile(r"^(\d{3})\.png$")


@dataclass
class SavedGrid:
    job_id: str
    request: JobRequest
    created: float
    name: str = ""
    status: JobStatus | None = None  # None: saved by an older version, state unknown
    gone: str = ""
    done: set[int] = field(default_factory=set)  # indices with a PNG on disk
    plot: dict = field(default_factory=dict)  # a plot layer's record (PlotTracker reads it); empty for a job's grid
    plot_jobs: dict = field(default_factory=dict)  # job id -> its last JobStatus as JSON, for a plot layer


class HistoryStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def create(self, job_id: str, request: JobRequest, created: float = 0.0, plot: dict | None = None) -> None:
        """`created`: when the job was submitted (0: now); the list is ordered by it. `plot`: a plot layer's record."""
        folder = self._folder(job_id)
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / REQUEST_FILE).exists():
            _write(folder / REQUEST_FILE, request.model_dump_json())
            self._update_meta(job_id, created=created or time.time(), **({"plot": plot} if plot else {}))

    def save_image(self, job_id: str, request: JobRequest, index: int, png: bytes) -> None:
        self.create(job_id, request)
        _write(self._folder(job_id) / f"{index:03d}.png", png)

    def save_state(self, job_id: str, status: JobStatus | None, gone: str) -> None:
        saved = status.model_dump(mode="json", exclude={"request"}) if status else None
        self._update_meta(job_id, status=saved, gone=gone)

    def save_plot_states(self, grid_id: str, statuses: dict[str, JobStatus], gone: str) -> None:
        saved = {job_id: s.model_dump(mode="json", exclude={"request"}) for job_id, s in statuses.items()}
        self._update_meta(grid_id, plot_jobs=saved, gone=gone)

    def forget(self, job_ids: list[str]) -> None:
        """Job ids not to take back from Redis (a deleted plot's jobs)."""
        kept = [*self.forgotten_ids(), *job_ids][-FORGOTTEN_KEPT:]
        self.root.mkdir(parents=True, exist_ok=True)
        _write(self.root / FORGOTTEN_FILE, "\n".join(kept) + "\n")

    def rename(self, job_id: str, name: str) -> None:
        self._update_meta(job_id, name=name)

    def delete(self, job_id: str) -> None:
        plot = _read_json(self._folder(job_id) / META_FILE).get("plot")
        shutil.rmtree(self._folder(job_id), ignore_errors=True)
        plot_jobs = plot.get("job_ids") if isinstance(plot, dict) else None  # a plot's jobs stay away too
        self.forget([job_id, *(str(j) for j in plot_jobs or [])])

    def forgotten_ids(self) -> list[str]:
        try:
            return (self.root / FORGOTTEN_FILE).read_text().split()
        except OSError:
            return []

    def prune(self, keep: int) -> list[str]:
        """Delete the oldest grids beyond `keep`; returns their job ids."""
        return [grid.job_id for grid in self._cut(keep)[1]]

    def kept(self, keep: int) -> list[SavedGrid]:
        """The newest `keep` grids, newest first, the older ones deleted: one listing for both."""
        return self._cut(keep)[0]

    def _cut(self, keep: int) -> tuple[list[SavedGrid], list[SavedGrid]]:
        """(the newest `keep` grids, the older ones, deleted)."""
        saved = self.list()
        for grid in saved[max(0, keep) :]:
            self.delete(grid.job_id)
        return saved[: max(0, keep)], saved[max(0, keep) :]

    def list(self) -> list[SavedGrid]:
        """Every grid, newest first, without reading a PNG; unreadable folders are skipped."""
        if not self.root.is_dir():
            return []
        grids = [g for f in self.root.iterdir() if f.is_dir() and JOB_ID.match(f.name) for g in [_read(f)] if g]
        return sorted(grids, key=lambda g: (g.created, -_layer(g)), reverse=True)  # a plot's layer 0 first

    def pngs(self, job_id: str) -> dict[int, bytes]:
        folder = self._folder(job_id)
        return {i: (folder / f"{i:03d}.png").read_bytes() for i in sorted(_done(folder))}

    def first_png(self, job_id: str) -> bytes | None:
        done = _done(self._folder(job_id))
        return (self._folder(job_id) / f"{min(done):03d}.png").read_bytes() if done else None

    def folder(self, job_id: str) -> Path:
        """Where the grid's files are (NNN.png per image)."""
        return self._folder(job_id)

    def thumbnail_path(self, job_id: str) -> Path:
        return self._folder(job_id) / THUMB_FILE

    def _update_meta(self, job_id: str, **changes) -> None:
        path = self._folder(job_id) / META_FILE
        if not path.parent.is_dir():
            return  # deleted meanwhile
        _write(path, json.dumps({**_read_json(path), **changes}))

    def _folder(self, job_id: str) -> Path:
        if not JOB_ID.match(job_id):
            raise ValueError(f"job id {job_id!r} is not a seedgrid job id")
        return self.root / job_id


def _read(folder: Path) -> SavedGrid | None:
    try:
        request = parse_request(json.loads((folder / REQUEST_FILE).read_text()))
        meta = _read_json(folder / META_FILE)
        created = float(meta.get("created") or (folder / REQUEST_FILE).stat().st_mtime)
        status = meta.get("status")
        status = JobStatus.model_validate({**status, "request": request}) if status else None
    except (OSError, ValueError, RequestError):
        return None
    plot, plot_jobs = meta.get("plot"), meta.get("plot_jobs")
    return SavedGrid(
        folder.name, request, created, meta.get("name", ""), status, meta.get("gone", ""), _done(folder),
        plot if isinstance(plot, dict) else {}, plot_jobs if isinstance(plot_jobs, dict) else {},
    )  # fmt: skip


def _layer(grid: SavedGrid) -> int:
    layer = grid.plot.get("layer", 0)
    return layer if isinstance(layer, int) else 0


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _done(folder: Path) -> set[int]:
    try:
        return {int(m.group(1)) for name in os.listdir(folder) if (m := PNG_NAME.match(name))}
    except OSError:
        return set()


def _write(path: Path, data: str | bytes) -> None:
    """Whole or not at all: an app closed mid-write leaves the old file."""
    partial = path.with_name(path.name + ".part")
    partial.write_bytes(data.encode() if isinstance(data, str) else data)
    os.replace(partial, path)
