"""The submitted plots of this session: a grid per Z value in the Grids list, and the backend's news of the plots'
jobs passed to the grids that show them."""

import uuid

from PySide6.QtCore import QObject
from PySide6.QtGui import QImage

from seedgrid.client.gui.history_model import HistoryModel
from seedgrid.client.gui.image_loader import make_thumbnail
from seedgrid.client.gui.plot_grid import PlotGridModel
from seedgrid.client.plots import SubmittedPlot
from seedgrid.shared.job import JobStatus


class PlotTracker(QObject):
    def __init__(self, history: HistoryModel, parent=None):
        super().__init__(parent)
        self.history = history

    @property
    def grids(self) -> list[PlotGridModel]:
        return [g for g in self.history.grids if isinstance(g, PlotGridModel)]

    def add(self, submitted: SubmittedPlot) -> list[PlotGridModel]:
        """The plot's grids, one per Z value (the first on top of the list)."""
        layers = submitted.plot.shape[2]
        grids = [PlotGridModel(uuid.uuid4().hex, submitted, z, self.parent()) for z in range(layers)]
        for grid in reversed(grids):
            self.history.add(grid)
        return grids

    def of_job(self, job_id: str) -> list[PlotGridModel]:
        return [g for g in self.grids if job_id in g.submitted.job_ids]

    def job_changed(self, status: JobStatus) -> None:
        for grid in self.of_job(status.job_id):
            grid.set_job_status(status)

    def job_lost(self, job_id: str, state: str) -> None:
        for grid in self.of_job(job_id):
            grid.set_gone(state)

    def image_ready(self, job_id: str, index: int, image: QImage, png: bytes) -> None:
        for grid in self.of_job(job_id):
            if grid.place_image(job_id, index, image, png) and grid.thumbnail is None:
                self.history.set_thumbnail(grid, make_thumbnail(image))

    def preview_ready(self, job_id: str, index: int, image: QImage) -> None:
        for grid in self.of_job(job_id):
            grid.place_preview(job_id, index, image)
