"""Small helpers shared by the integration tests."""

import io
import signal
import time

import numpy as np
from PIL import Image

from seedgrid.client.api import SeedgridClient


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)


def max_pixel_diff(a: bytes, b: bytes) -> int:
    return int(np.abs(pixels(a) - pixels(b)).max())


def wait_until(condition, timeout: float = 60.0, interval: float = 0.05, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")


def pngs_by_seed(client: SeedgridClient, job_id: str) -> dict[tuple[str, int], bytes]:
    return {(r.prompt, r.seed): client.image_png(job_id, r.index) for r in client.images(job_id)}


def default_sigint() -> None:
    """Popen's preexec_fn for a child the test interrupts: where SIGINT is ignored (a shell's background
    job), Python would not turn Ctrl+C into KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
