"""What a worker advertises in its expiring heartbeat."""

from pydantic import BaseModel

HEARTBEAT_SECONDS = 2.0
HEARTBEAT_TTL = 10


def served_models(workers: "list[WorkerInfo]") -> dict[str, list[str]]:
    """Model name -> schedulers, for every model one of `workers` serves."""
    served: dict[str, list[str]] = {}
    for worker in workers:
        for offer in worker.offers():
            served.setdefault(offer.name, offer.schedulers)
    return served


def worker_serving(workers: "list[WorkerInfo]", model: str) -> "ModelOffer | None":
    """What the workers serving `model` advertise for it (family, defaults), from one that has it loaded if any."""
    offers = [offer for worker in workers for offer in worker.offers() if offer.name == model]
    return next((offer for offer in offers if offer.loaded), offers[0] if offers else None)


def loras_for(workers: "list[WorkerInfo]", model: str) -> set[str]:
    """The LoRA names that the workers serving `model` allow."""
    return {lora for worker in workers if worker.serves(model) for lora in worker.loras}


def allowed_loras_rule(allowed: "set[str] | list[str]") -> str:
    return "one of " + ", ".join(sorted(allowed)) if allowed else "none: a worker allows LoRAs with --loras DIR"


def serving(workers: "list[WorkerInfo]") -> "dict[str, ModelOffer]":
    """Model name -> worker_serving(workers, name), for every model served; loaded ones first."""
    names = sorted(served_models(workers), key=lambda name: (not any(w.has_loaded(name) for w in workers), name))
    return {name: offer for name in names if (offer := worker_serving(workers, name)) is not None}


class ModelTakes(BaseModel):
    """A model's family ("sd", "sdxl", "flux"), its defaults and what it takes; the defaults here read
    heartbeats of older workers (which served SD only)."""

    family: str = "sd"
    default_width: int = 512
    default_height: int = 512
    default_steps: int = 20
    default_guidance: float = 7.5
    negative_prompt: bool = True  # False: the model takes no negative prompt (Flux)
    size_multiple: int = 8  # width and height must be multiples of it


# What clients follow of a model: what it takes and its schedulers.
TAKES_FIELDS = {*ModelTakes.model_fields, "schedulers"}


class ModelOffer(ModelTakes):
    """One model a worker serves."""

    name: str
    schedulers: list[str]
    loaded: bool = True  # in the worker's memory now; False: loaded when a job first needs it
    model_hash: str = ""  # A1111's short hash of a checkpoint file; "" for folders, hub ids and built-in models


class WorkerInfo(ModelTakes):
    """A worker; the fields of ModelTakes and `schedulers` are its first model's (as older clients read them)."""

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
    # Every model the worker serves (heartbeats of older workers: none; offers() reads the fields above).
    models: list[ModelOffer] = []
    loras: list[str] = []  # LoRA names it may apply
    memory_plan: str = ""  # how the model sits in GPU memory (full, offload), with why
    model_loads: int = 0  # models loaded since start (switches between models)
    busy: bool = False
    current_job: str = ""
    loading: str = ""  # the model it is loading for current_job
    jobs_done: int = 0
    started_at: float = 0.0

    def state(self) -> str:
        """idle, busy, or loading a model for a job."""
        return f"loading {self.loading}" if self.loading else "busy" if self.busy else "idle"

    def offers(self) -> list[ModelOffer]:
        if self.models:
            return self.models
        return [ModelOffer(name=self.model, **self.model_dump(include=TAKES_FIELDS))]

    def serves(self, model: str) -> bool:
        return any(offer.name == model for offer in self.offers())

    def has_loaded(self, model: str) -> bool:
        return any(offer.name == model and offer.loaded for offer in self.offers())

    def models_label(self) -> str:
        """The models it serves, loaded ones first and marked with * when it serves several."""
        offers = sorted(self.offers(), key=lambda offer: not offer.loaded)
        return ", ".join(offer.name + ("*" if offer.loaded and len(offers) > 1 else "") for offer in offers)
