"""A job for a model this worker has not loaded goes to an idle worker that has it loaded, if one is online.

Redis hands a queue's next message to whichever worker has waited longest, whatever it has loaded; so the
worker that received it sends the task once more (marked handed over: never handed on again) and the
idle worker with the model takes it, instead of this one loading the model.
"""

from seedgrid.worker.model_shelf import ModelShelf
from seedgrid.worker.runtime import WorkerRuntime


def idle_worker_with(runtime: WorkerRuntime, model: str) -> str | None:
    """The name of another live, idle worker that has `model` loaded, when this one has not."""
    shelf = runtime.engine
    if not isinstance(shelf, ModelShelf) or model in shelf.loaded or model not in shelf.by_name:
        return None
    for info in runtime.store.workers():
        if info.name != runtime.name and not info.busy and info.has_loaded(model):
            return info.name
    return None
