"""A SIMULATED model for measuring the queue and the fleet, not a GPU: each image takes a fixed time.

`seedgrid worker --model simulated --simulated-seconds 0.2` serves it. It goes through the same
job runner, Redis records and PNG metadata as a real model, without torch: workers start in a
second, so benchmarks can run many of them on a small machine.
"""

import time
from collections import deque
from collections.abc import Sequence

from PIL import Image

from seedgrid.shared.limits import SCHEDULER_NAMES
from seedgrid.shared.request import JobRequest, RequestError
from seedgrid.worker.engine_api import BatchCallback, ItemT, PreviewCallback, StepCallback

SIMULATED_MODEL_NAME = "simulated"


def is_simulated(model: str) -> bool:
    """`simulated`, or `simulated-NAME` for several simulated models on one worker (tests of scheduling)."""
    return model == SIMULATED_MODEL_NAME or model.startswith(f"{SIMULATED_MODEL_NAME}-")


class SimulatedEngine:
    def __init__(self, seconds_per_image: float = 0.2, max_batch: int = 8, name: str = SIMULATED_MODEL_NAME):
        self.seconds_per_image = seconds_per_image
        self.max_batch = max_batch
        self.model_name = name
        self.device = "simulated"
        self.schedulers = list(SCHEDULER_NAMES)

    @classmethod
    def loaded(cls, seconds_per_image: float, max_batch: int, name: str, load_seconds: float) -> "SimulatedEngine":
        """As a worker loads a model: `load_seconds` stand for reading a checkpoint onto a GPU."""
        time.sleep(load_seconds)
        return cls(seconds_per_image, max_batch, name)

    def check(self, request: JobRequest) -> None:
        if request.model != self.model_name:
            raise RequestError("model", f"this worker serves {self.model_name!r}, not {request.model!r}")

    def run(
        self,
        request: JobRequest,
        items: Sequence[ItemT],
        on_step: StepCallback[ItemT],
        on_batch: BatchCallback[ItemT],
        on_preview: PreviewCallback[ItemT] | None = None,
    ) -> None:
        """A batch takes `seconds_per_image` per image, spread over its steps, like a GPU at fixed speed."""
        pending = deque(items[i : i + self.max_batch] for i in range(0, len(items), self.max_batch))
        while pending:
            batch = pending.popleft()
            step_seconds = self.seconds_per_image * len(batch) / request.steps
            for step in range(1, request.steps + 1):
                time.sleep(step_seconds)
                on_step(step, request.steps, batch)
            shade = [(item.seed * 37) % 256 for item in batch]
            on_batch(batch, [Image.new("RGB", (request.width, request.height), (s, s, s)) for s in shade])
