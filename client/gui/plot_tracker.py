"""The plots in the Grids list (a grid per Z value, kept by the history keeper): the backend's news of the plots'
jobs passed to the grids that show them, their images and states saved as they come."""

from PySide6.QtCore import QObject
from PySide6.QtGui import QImage

from seedgrid.client.gui.history_keeper import HistoryKeeper
from seedgrid.client.gui.plot_grid import PlotGridModel
from seedgrid.client.plots import SubmittedPlot
from seedgrid.shared.job import JobStatus


class PlotTracker(QObject):
    def __init__(self, keeper: HistoryKeeper, parent=None):
        super().__init__(parent)
        self.keeper = keeper

    @property
    def grids(self) -> list[PlotGridModel]:
        return [g for g in self.keeper.model.grids if isinstance(g, PlotGridModel)]

    def add(self, submitted: SubmittedPlot) -> list[PlotGridModel]:
        """The plot's grids, one per Z value (the first on top of the list)."""
        return self.keeper.add_plot(submitted)

    def of_job(self, job_id: str) -> list[PlotGridModel]:
        return [g for g in self.grids if job_id in g.submitted.job_ids]

    def job_changed(self, status: JobStatus) -> None:
        for grid in self.of_job(status.job_id):
            saved = grid.statuses.get(status.job_id)
            grid.set_job_status(status)
            if saved is None or saved.state != status.state:
                self.keeper.save_state(grid)

    def job_lost(self, job_id: str, state: str) -> None:
        for grid in self.of_job(job_id):
            grid.set_gone(state)
            self.keeper.save_state(grid)

    def image_ready(self, job_id: str, index: int, image: QImage, png: bytes) -> None:
        for grid in self.of_job(job_id):
            for cell in grid.cells_of(job_id, index):
                self.keeper.image_ready(grid, cell, image, png)

    def preview_ready(self, job_id: str, index: int, image: QImage) -> None:
        for grid in self.of_job(job_id):
            grid.place_preview(job_id, index, image)
