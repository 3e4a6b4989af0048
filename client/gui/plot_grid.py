"""One Z layer of a submitted plot as a grid: X values are the columns, Y values the rows; each cell's image comes
from its (job, item index) as the plot's jobs make them. Plots are listed with the grids for the session; their
images are not saved to the history folder (a restart shows the plot's jobs as grids of their own)."""

import io
from collections import defaultdict

from PIL import Image
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QImage

from seedgrid.client.gui.grid_model import GridModel
from seedgrid.client.plots import SubmittedPlot, plot_progress, plot_state
from seedgrid.shared.job import JobState, JobStatus
from seedgrid.shared.plot import Cell
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
        return "running" if any(s.state != JobState.QUEUED for s in self.statuses.values()) else "queued"

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

    def place_image(self, job_id: str, index: int, image: QImage, png: bytes) -> bool:
        """The image of item `index` of `job_id` into the cells it belongs to; False when none here."""
        cells = self.places.get((job_id, index), [])
        for cell in cells:
            self.set_image(cell, image, png)
        return bool(cells)

    def place_preview(self, job_id: str, index: int, image: QImage) -> None:
        for cell in self.places.get((job_id, index), []):
            self.set_preview(cell, image)

    def unload(self) -> None:
        """Kept decoded: a plot's images are not in the history folder to load again."""

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
