"""Grids kept on disk (the platform's data folder), so history survives restarts and Redis expiry."""

import json
import re
from pathlib import Path

from seedgrid.shared.request import JobRequest, RequestError, parse_request

REQUEST_FILE = "request.json"
JOB_ID = re.compile(r"^[0-9a-f]{8,64}$")


class HistoryStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def save_image(self, job_id: str, request: JobRequest, index: int, png: bytes) -> None:
        folder = self._folder(job_id)
        folder.mkdir(parents=True, exist_ok=True)
        request_path = folder / REQUEST_FILE
        if not request_path.exists():
            request_path.write_text(request.model_dump_json())
        (folder / f"{index:03d}.png").write_bytes(png)

    def load(self, limit: int = 50) -> list[tuple[str, JobRequest, dict[int, bytes]]]:
        """The newest `limit` grids, newest first; unreadable folders are skipped."""
        if not self.root.is_dir():
            return []
        folders = [f for f in self.root.iterdir() if f.is_dir() and JOB_ID.match(f.name)]
        folders.sort(
            key=lambda f: (f / REQUEST_FILE).stat().st_mtime if (f / REQUEST_FILE).exists() else 0, reverse=True
        )
        grids = []
        for folder in folders[:limit]:
            try:
                request = parse_request(json.loads((folder / REQUEST_FILE).read_text()))
            except (OSError, ValueError, RequestError):
                continue
            pngs = {int(p.stem): p.read_bytes() for p in folder.glob("[0-9][0-9][0-9].png")}
            grids.append((folder.name, request, pngs))
        return grids

    def _folder(self, job_id: str) -> Path:
        if not JOB_ID.match(job_id):
            raise ValueError(f"job id {job_id!r} is not a seedgrid job id")
        return self.root / job_id
