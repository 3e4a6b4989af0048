"""A one-line progress bar on stderr for a job being followed."""

import sys

from seedgrid.shared.job import JobState, JobStatus


class LineBar:
    """One line on stderr, redrawn in place on a terminal; elsewhere a new line only when `key` changes."""

    def __init__(self, label: str, width: int = 30, stream=None):
        self.label = label
        self.width = width
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._last_line = ""
        self._last_shown: tuple | None = None

    def head(self, fraction: float) -> tuple[str, int]:
        """The label, the bar and the percentage; and how many of the bar's cells are filled."""
        filled = int(fraction * self.width)
        return f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {fraction:4.0%}", filled

    def show(self, line: str, key: tuple) -> None:
        if self.tty:
            self.stream.write("\r" + line.ljust(len(self._last_line)))
        elif key != self._last_shown:
            self.stream.write(line + "\n")
            self._last_shown = key
        self.stream.flush()
        self._last_line = line

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


class ProgressBar(LineBar):
    """A job being followed."""

    def update(self, status: JobStatus) -> None:
        head, filled = self.head(status.progress)
        detail = status.activity  # "loading model NAME" while a worker loads the job's model
        if status.state == JobState.RUNNING:
            detail = f"step {status.step}/{status.steps}, images {status.images_done}/{status.images_total}"
        # not a terminal: a line per state, phase or fifth
        self.show(f"{head} {detail}", (status.state, status.phase, filled // 6))
