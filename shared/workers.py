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
    # The model's family ("sd", "sdxl") and its default size; the defaults read heartbeats of older workers.
    family: str = "sd"
    default_width: int = 512
    default_height: int = 512
    busy: bool = False
    current_job: str = ""
    jobs_done: int = 0
    started_at: float = 0.0
