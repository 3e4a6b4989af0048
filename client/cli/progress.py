"""A one-line progress bar on stderr for a job being followed."""

import sys

from seedgrid.shared.job import JobState, JobStatus


class ProgressBar:
    def __init__(self, label: str, width: int = 30, stream=None):
        self.label = label
        self.width = width
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._last_line = ""
        self._last_shown: tuple | None = None

    def update(self, status: JobStatus) -> None:
        filled = int(status.progress * self.width)
        detail = status.state.value
        if status.state == JobState.RUNNING:
            detail = f"step {status.step}/{status.steps}, images {status.images_done}/{status.images_total}"
        line = f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {status.progress:4.0%} {detail}"
        if self.tty:
            self.stream.write("\r" + line.ljust(len(self._last_line)))
        elif (status.state, filled // 6) != self._last_shown:  # not a terminal: a line per state or fifth
            self.stream.write(line + "\n")
            self._last_shown = (status.state, filled // 6)
        self.stream.flush()
        self._last_line = line

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
