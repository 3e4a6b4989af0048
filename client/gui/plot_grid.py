"""One Z layer of a submitted plot as a grid: X values are the columns, Y values the rows; each cell's image comes
from its (job, item index) as the plot's jobs make them. Kept in the history folder like a job's grid (NNN.png is
cell NNN's image), with a record of the plot from which it is made again after a restart."""

import io
from collections import defaultdict

from PIL import Image
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QImage

from seedgrid.client.gui.grid_model import GridModel
from seedgrid.client.gui.history_store import SavedGrid
from seedgrid.client.plots import SubmittedPlot, plot_progress, plot_state
from seedgrid.shared.job import JobState, JobStatus
from seedgrid.shared.plot import Cell, axes_json, plot_from_json
from seedgrid.shared.plot_image import plot_image
from seedgrid.shared.request import Item, JobRequest


class PlotGridModel(GridModel):
    def __init__(self, grid_id: str, submitted: SubmittedPlot, layer: int = 0, parent=None):
        super().__init__(grid_id, submitted.plot.base, parent)
        self.submitted = submitted
        self.plot = submitted.plot
        self.layer = layer
        self.cols, self.rows, _ = self.plot.shape
        first = layer * self.cols * self.rows
        self.cells: list[Cell] = list(self.plot.cells[first : first + self.cols * self.rows])
        self.items = [
            Item(index=i, row=c.y, col=c.x, prompt=c.request.prompts[0], seed=c.request.seeds[0],
                 negative_prompt=c.request.negative_prompt)
            for i, c in enumerate(self.cells)
        ]  # fmt: skip
        self.labels = self.plot.labels("y")
        self.statuses: dict[str, JobStatus] = {}
        self.places: dict[tuple[str, int], list[int]] = defaultdict(list)  # (job id, item index) -> cells here
        self.cell_jobs = [submitted.cell_job(first + i)[0] for i in range(len(self.cells))]
        for i in range(len(self.cells)):
            self.places[submitted.cell_job(first + i)].append(i)

    def record(self) -> dict:
        """What from_saved needs, besides the base request, to make this grid again."""
        s = self.submitted
        return {"plot_id": s.plot_id, "job_ids": s.job_ids, "layer": self.layer, "axes": axes_json(self.plot),
                "submitted_at": s.submitted_at}  # fmt: skip

    @classmethod
    def from_saved(cls, saved: SavedGrid, parent=None) -> "PlotGridModel | None":
        """The layer a history folder holds, its cells done and its jobs' last states; None if it is unreadable."""
        record = saved.plot
        try:
            plot = plot_from_json(saved.request, record["axes"])
            job_ids = [str(j) for j in record["job_ids"]]
            layer = int(record["layer"])
            submitted = SubmittedPlot(str(record["plot_id"]), plot, job_ids, float(record["submitted_at"]))
            if len(job_ids) != len(plot.jobs) or not 0 <= layer < plot.shape[2]:
                return None
            statuses = {
                job_id: JobStatus.model_validate({**saved.plot_jobs[job_id], "request": plot.jobs[i]})
                for i, job_id in enumerate(job_ids)
                if job_id in saved.plot_jobs
            }
        except (KeyError, TypeError, ValueError):
            return None
        grid = cls(saved.job_id, submitted, layer, parent)
        grid.statuses, grid.gone, grid.name = statuses, saved.gone, saved.name
        grid.done = {i for i in saved.done if i < len(grid.cells)}
        return grid

    def cells_of(self, job_id: str, index: int) -> list[int]:
        """The cells here that show item `index` of `job_id`."""
        return self.places.get((job_id, index), [])

    def pending_jobs(self) -> dict[str, set[int]]:
        """The plot's jobs that may still change or owe this layer images, each with the items it owes here."""
        if self.gone:
            return {}
        owed: dict[str, set[int]] = defaultdict(set)
        for (job_id, index), cells in self.places.items():
            if not all(c in self.done for c in cells):
                owed[job_id].add(index)

        def pending(job_id: str) -> bool:
            status = self.statuses.get(job_id)
            return (
                status is None or not status.state.finished or (status.state == JobState.SUCCEEDED and job_id in owed)
            )

        return {job_id: owed[job_id] for job_id in dict.fromkeys(self.cell_jobs) if pending(job_id)}

    def job_items(self, job_id: str) -> int:
        """How many images the plot's job makes."""
        request = self.plot.jobs[self.submitted.job_ids.index(job_id)]
        return len(request.prompts) * len(request.seeds)

    @property
    def title(self) -> str:
        axes = " × ".join(self.plot.title(n) for n in ("x", "y") if self.plot.axis(n))
        z = f" · {self.plot.title('z')} {self.plot.labels('z')[self.layer]}" if self.plot.axis("z") else ""
        return f"{self.name or 'plot ' + axes}{z} · {len(self.cells)} cells · {self.state}{self._progress_text()}"

    def _progress_text(self) -> str:
        """While the plot runs: its cells done (all layers), images/s and the time left, as the CLI shows them."""
        if self.state != "running":
            return ""
        progress = plot_progress(self.submitted, self.statuses)
        text = f" · {progress.cells_done}/{progress.cells_total} cells done"
        if progress.images_per_second:
            text += f", {progress.images_per_second:.2g} images/s"
        if progress.seconds_left is not None:
            text += f", about {progress.seconds_left:.0f} s left"
        return text

    @property
    def state(self) -> str:
        if self.gone:
            return self.gone
        if len(self.statuses) < len(self.submitted.job_ids):
            return "queued" if not self.statuses else "running"
        if all(s.state.finished for s in self.statuses.values()):
            return plot_state(self.statuses).value
        if any(s.state == JobState.RUNNING for s in self.statuses.values()):
            return "running"
        loading = next((s.phase for s in self.statuses.values() if s.state == JobState.STARTED and s.phase), "")
        return loading or ("running" if any(s.state != JobState.QUEUED for s in self.statuses.values()) else "queued")

    @property
    def job_ids(self) -> list[str]:
        return list(self.submitted.job_ids)

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else self.rows

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else self.cols

    def item_at(self, row: int, col: int) -> Item:
        return self.items[row * self.cols + col]

    def request_at(self, row: int, col: int) -> JobRequest:
        return self.cells[row * self.cols + col].request

    def caption(self, item: Item) -> str:
        return " · ".join(self._axis_text(n, i) for n, i in (("x", item.col), ("y", item.row)) if self.plot.axis(n))

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if index.isValid() and role == Qt.ItemDataRole.ToolTipRole:
            r = self.request_at(index.row(), index.column())
            return (
                f"{r.prompts[0]}\nseed {r.seeds[0]} · {r.steps} steps · guidance {r.guidance:g} · {r.scheduler}"
                f" · {r.width}x{r.height} · {r.model}"
            )
        return super().data(index, role)

    def headerData(self, section: int, orientation, role: int = Qt.ItemDataRole.DisplayRole):
        name = "x" if orientation == Qt.Orientation.Horizontal else "y"
        if role == Qt.ItemDataRole.DisplayRole:
            return self.plot.labels(name)[section]
        if role == Qt.ItemDataRole.ToolTipRole and self.plot.axis(name):
            return self._axis_text(name, section)
        return None

    def _axis_text(self, name: str, position: int) -> str:
        return f"{self.plot.title(name)} {self.plot.labels(name)[position]}"

    # -- as the plot's jobs go
    def set_job_status(self, status: JobStatus) -> None:
        self.statuses[status.job_id] = status
        self.status = status
        self._changed_all()

    def place_preview(self, job_id: str, index: int, image: QImage) -> None:
        for cell in self.places.get((job_id, index), []):
            self.set_preview(cell, image)

    def picture(self) -> Image.Image:
        images: list[Image.Image | None] = [None] * len(self.plot.cells)
        first = self.layer * self.cols * self.rows
        for i, png in self.pngs.items():
            images[first + i] = Image.open(io.BytesIO(png))
        return plot_image(self.plot, images, self.layer)

    def _cell_state(self, index: int) -> str | None:
        status = self.statuses.get(self.cell_jobs[index])
        if index in self.done:
            return None
        if self.gone:
            return self.gone
        if status is not None and status.state in (JobState.CANCELLED, JobState.FAILED):
            return status.state.value
        return None

    def _cell_progress(self, index: int) -> float | None:
        status = self.statuses.get(self.cell_jobs[index])
        if index in self.done or status is None or self._cell_state(index):
            return None
        if status.state == JobState.RUNNING and status.steps:
            return status.step / status.steps
        return 0.0

    def _changed(self, index: int) -> None:
        cell = self.index(index // self.cols, index % self.cols)
        self.dataChanged.emit(cell, cell)
