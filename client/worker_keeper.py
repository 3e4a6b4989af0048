"""`seedgrid up`'s local worker, started again when it dies (a crash, an out-of-memory kill)."""

import sys
import threading
import time
from collections.abc import Callable

from seedgrid.client.local import LocalWorker

CHECK_SECONDS = 1.0
MAX_RESTARTS = 5  # in a row, each within RESTART_WINDOW seconds of the last: then it is left stopped
RESTART_WINDOW = 60.0


class WorkerKeeper(threading.Thread):
    def __init__(self, start: Callable[[], LocalWorker]):
        super().__init__(name="seedgrid-worker-keeper", daemon=True)
        self.start_worker = start
        self.worker = start()
        self.restarts = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        last = time.monotonic()
        while not self.stopped.wait(CHECK_SECONDS):
            if self.worker.alive():
                continue
            reason = self.worker.last_words() or f"exit status {self.worker.process.returncode}"
            self.restarts = self.restarts + 1 if time.monotonic() - last < RESTART_WINDOW else 1
            if self.restarts > MAX_RESTARTS:
                print(f"seedgrid up: the local worker keeps exiting ({reason}); not started again", file=sys.stderr)
                return
            print(f"seedgrid up: the local worker exited ({reason}); starting it again", file=sys.stderr)
            last = time.monotonic()
            self.worker = self.start_worker()

    def stop(self) -> None:
        """No more restarts, then the worker's warm shutdown."""
        self.stopped.set()
        if self.is_alive():
            self.join()
        self.worker.stop()
