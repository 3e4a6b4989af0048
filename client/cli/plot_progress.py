"""A one-line progress bar on stderr for a plot: cells done, images/s, time left."""

from seedgrid.client.cli.progress import LineBar
from seedgrid.client.plots import PlotProgress


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class PlotProgressBar(LineBar):
    def update(self, p: PlotProgress) -> None:
        head, filled = self.head(p.images_done / p.images_total if p.images_total else 0.0)
        rate = f"{p.images_per_second:.2f} images/s" if p.images_per_second else "-- images/s"
        left = "done" if p.finished else (f"{_duration(p.seconds_left)} left" if p.seconds_left is not None else "")
        line = f"{head} cells {p.cells_done}/{p.cells_total}, {rate}, {left}".rstrip(", ")
        self.show(line, (p.cells_done, p.finished, filled // 6))  # not a terminal: a line per change
