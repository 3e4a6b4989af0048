"""What a worker advertises in its expiring heartbeat."""

from pydantic import BaseModel

HEARTBEAT_SECONDS = 2.0
HEARTBEAT_TTL = 10


def served_models(workers: "list[WorkerInfo]") -> dict[str, list[str]]:
    """Model name -> schedulers, for every model one of `workers` serves."""
    served: dict[str, list[str]] = {}
    for worker in workers:
        served.setdefault(worker.model, worker.schedulers)
    return served


def worker_serving(workers: "list[WorkerInfo]", model: str) -> "WorkerInfo | None":
    """The first of `workers` serving `model`: what it advertises for the model (family, defaults)."""
    return next((worker for worker in workers if worker.model == model), None)


class WorkerInfo(BaseModel):
    name: str
    host: str
    pid: int
    model: str
    device: str
    device_name: str = ""
    device_memory_gb: float = 0.0  # the GPU's memory; on a CPU, the machine's
    vae: str = ""
    schedulers: list[str]
    max_batch: int
    # The model's family ("sd", "sdxl", "flux"), its defaults and what it takes; the defaults here read
    # heartbeats of older workers (which served SD only).
    family: str = "sd"
    default_width: int = 512
    default_height: int = 512
    default_steps: int = 20
    default_guidance: float = 7.5
    negative_prompt: bool = True  # False: the model takes no negative prompt (Flux)
    size_multiple: int = 8  # width and height must be multiples of it
    busy: bool = False
    current_job: str = ""
    jobs_done: int = 0
    started_at: float = 0.0
