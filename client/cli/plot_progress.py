"""A one-line progress bar on stderr for a plot: cells done, images/s, time left."""

import sys

from seedgrid.client.plots import PlotProgress


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class PlotProgressBar:
    def __init__(self, label: str, width: int = 30, stream=None):
        self.label = label
        self.width = width
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._last_line = ""
        self._last_shown: tuple | None = None

    def update(self, p: PlotProgress) -> None:
        fraction = p.images_done / p.images_total if p.images_total else 0.0
        filled = int(fraction * self.width)
        rate = f"{p.images_per_second:.2f} images/s" if p.images_per_second else "-- images/s"
        left = "done" if p.finished else (f"{_duration(p.seconds_left)} left" if p.seconds_left is not None else "")
        line = (
            f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {fraction:4.0%} "
            f"cells {p.cells_done}/{p.cells_total}, {rate}, {left}"
        ).rstrip(", ")
        if self.tty:
            self.stream.write("\r" + line.ljust(len(self._last_line)))
        elif (p.cells_done, p.finished, filled // 6) != self._last_shown:  # not a terminal: a line per change
            self.stream.write(line + "\n")
            self._last_shown = (p.cells_done, p.finished, filled // 6)
        self.stream.flush()
        self._last_line = line

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
