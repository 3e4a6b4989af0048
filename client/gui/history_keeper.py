"""The grids across restarts (a job's, or a plot's layer): saved as they change, listed at start without decoding
images, pending jobs followed again, this client's jobs in Redis taken back; only the shown grid's images stay
decoded."""

import uuid

from PySide6.QtCore import QObject, QThread, Signal
from PySide6.QtGui import QImage

from seedgrid.client.gui.grid_model import GridModel
from seedgrid.client.gui.history_model import HistoryModel
from seedgrid.client.gui.history_store import HistoryStore, SavedGrid
from seedgrid.client.gui.image_loader import ImageLoader, make_thumbnail
from seedgrid.client.gui.plot_grid import PlotGridModel
from seedgrid.client.gui.settings import history_cap
from seedgrid.client.plots import SubmittedPlot
from seedgrid.shared.job import JobState, JobStatus
from seedgrid.shared.request import JobRequest


class HistoryKeeper(QObject):
    follow_requested = Signal(str, list)  # job id, indices already made: for the backend
    unfollow_requested = Signal(str)
    grid_removed = Signal(object)  # GridModel, deleted or dropped by the cap
    _load_images = Signal(str)
    _load_thumbnails = Signal(list)

    def __init__(self, store: HistoryStore, model: HistoryModel, parent=None):
        super().__init__(parent)
        self.store = store
        self.model = model
        self.shown: GridModel | None = None
        self.loader_thread = QThread(self)
        self.loader = ImageLoader(store)
        self.loader.moveToThread(self.loader_thread)
        self._load_images.connect(self.loader.load_images)
        self._load_thumbnails.connect(self.loader.load_thumbnails)
        self.loader.images_loaded.connect(self._images_loaded)
        self.loader.thumbnail_loaded.connect(self._thumbnail_loaded)
        self.loader_thread.start()

    def restore(self) -> None:
        """The saved grids, oldest dropped beyond the cap; thumbnails follow from the loader thread."""
        grids = [grid for saved in reversed(self.store.kept(history_cap())) if (grid := self._grid(saved)) is not None]
        for grid in grids:
            self.model.add(grid)
        self._load_thumbnails.emit([g.job_id for g in reversed(grids)])

    def follow_pending(self) -> None:
        """Ask the backend to follow every job that may still change or owes images (a plot's job: all its items
        but those a layer still owes, Z layers sharing a job)."""
        owed: dict[str, set[int]] = {}
        items: dict[str, int] = {}
        for grid in self.model.grids:
            if isinstance(grid, PlotGridModel):
                for job_id, indices in grid.pending_jobs().items():
                    owed.setdefault(job_id, set()).update(indices)
                    items[job_id] = grid.job_items(job_id)
            elif _pending(grid):
                self.follow_requested.emit(grid.job_id, sorted(grid.done))
        for job_id, indices in owed.items():
            self.follow_requested.emit(job_id, sorted(set(range(items[job_id])) - indices))

    def adopt(self, jobs: list[JobStatus]) -> None:
        """This client's jobs as Redis has them: unknown ones (not deleted here, not a kept plot's) become grids,
        followed."""
        forgotten = set(self.store.forgotten_ids()) | self._plot_jobs()
        for status in reversed(jobs):
            grid = self.model.find(status.job_id)
            if grid is None and status.request is not None and status.job_id not in forgotten:
                grid = self.add(status.job_id, status.request, status.submitted_at)
            if grid is not None and not grid.gone and (grid.status is None or _pending(grid)):
                self.follow_requested.emit(grid.job_id, sorted(grid.done))  # (None: its state is in Redis)

    def add_plot(self, submitted: SubmittedPlot) -> list[PlotGridModel]:
        """A new plot's grids, one per Z value (the first on top of the list), saved at once."""
        grids = [PlotGridModel(uuid.uuid4().hex, submitted, z, self.parent()) for z in range(submitted.plot.shape[2])]
        for grid in reversed(grids):
            self.store.create(grid.job_id, submitted.plot.base, submitted.submitted_at, grid.record())
            grid.folder = self.store.folder(grid.job_id)
            self.model.add(grid)
        self.prune()
        return grids

    def add(self, job_id: str, request: JobRequest, created: float = 0.0) -> GridModel:
        """A new job's grid, saved at once so that a job pending at close is followed after a restart."""
        self.store.create(job_id, request, created)
        grid = GridModel(job_id, request, self.parent())
        grid.folder = self.store.folder(job_id)
        self.model.add(grid)
        self.store.save_state(job_id, JobStatus(job_id=job_id, state=JobState.QUEUED), "")
        self.prune()
        return grid

    def show(self, grid: GridModel | None) -> None:
        """Only the shown grid keeps its images decoded; the one shown before lets them go."""
        if self.shown is not None and self.shown is not grid:
            self.shown.unload()
        self.shown = grid
        self.loader.wanted = grid.job_id if grid else ""
        if grid is not None and not grid.loaded:
            self._load_images.emit(grid.job_id)

    def image_ready(self, grid: GridModel, index: int, image: QImage, png: bytes) -> None:
        self.store.save_image(grid.job_id, grid.request, index, png)
        if grid is self.shown:
            grid.set_image(index, image, png)
        else:
            grid.mark_done(index)
        if grid.thumbnail is None:
            thumbnail = make_thumbnail(image)
            thumbnail.save(str(self.store.thumbnail_path(grid.job_id)))  # PNG, from the name
            self.model.set_thumbnail(grid, thumbnail)

    def save_state(self, grid: GridModel) -> None:
        if isinstance(grid, PlotGridModel):
            self.store.save_plot_states(grid.job_id, grid.statuses, grid.gone)
        else:
            self.store.save_state(grid.job_id, grid.status, grid.gone)

    def rename(self, grid: GridModel, name: str) -> None:
        grid.set_name(name)
        self.store.rename(grid.job_id, name)

    def delete(self, grid: GridModel) -> None:
        self.store.delete(grid.job_id)
        self._removed(grid)

    def prune(self) -> None:
        for job_id in self.store.prune(history_cap()):
            grid = self.model.find(job_id)
            if grid is not None:
                self._removed(grid)

    def _removed(self, grid: GridModel) -> None:
        self.model.remove(grid)
        for job_id in set(grid.job_ids) - self._plot_jobs():  # (a plot's other layers may still show a job)
            self.unfollow_requested.emit(job_id)
        if grid is self.shown:
            self.show(None)
        self.grid_removed.emit(grid)
        grid.unload()
        grid.deleteLater()

    def shutdown(self) -> None:
        self.loader.wanted = ""
        self.loader.stopping = True
        self.loader_thread.quit()
        self.loader_thread.wait(5000)

    def _plot_jobs(self) -> set[str]:
        return {job_id for g in self.model.grids if isinstance(g, PlotGridModel) for job_id in g.job_ids}

    def _grid(self, saved: SavedGrid) -> GridModel | None:
        if saved.plot:
            plot_grid = PlotGridModel.from_saved(saved, self.parent())
            if plot_grid is not None:
                plot_grid.folder = self.store.folder(saved.job_id)
            return plot_grid
        grid = GridModel(saved.job_id, saved.request, self.parent())
        grid.folder = self.store.folder(saved.job_id)
        grid.done, grid.status, grid.gone, grid.name = saved.done, saved.status, saved.gone, saved.name
        grid.unknown_state = "saved"
        return grid

    def _images_loaded(self, job_id: str, decoded: dict) -> None:
        if self.shown is not None and self.shown.job_id == job_id:
            self.shown.set_images(decoded)

    def _thumbnail_loaded(self, job_id: str, image: QImage) -> None:
        grid = self.model.find(job_id)
        if grid is not None:
            self.model.set_thumbnail(grid, image)


def _pending(grid: GridModel) -> bool:
    """A job that may still change, or a succeeded one still owed images; not an old save of unknown state."""
    if grid.gone or grid.status is None:
        return False
    return not grid.status.state.finished or (grid.status.state == JobState.SUCCEEDED and not grid.complete)
