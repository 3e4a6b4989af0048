"""A worker process's state: its engine, its Redis, its name, and what it is doing."""

import logging
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from seedgrid.shared.jobstore import JobStore
from seedgrid.shared.leases import HeldLeases, Leases
from seedgrid.shared.mergepool import MergePool
from seedgrid.shared.model_hash import lora_short_hash
from seedgrid.shared.redis_conn import connect
from seedgrid.shared.request import JobRequest
from seedgrid.shared.settings import SettingsError, get_settings
from seedgrid.shared.workers import TAKES_FIELDS, ModelOffer, WorkerInfo
from seedgrid.worker.engine_api import Engine
from seedgrid.worker.loras import LoraApplier, LoraLibrary
from seedgrid.worker.memory import release_memory
from seedgrid.worker.model_affinity import ModelAffinity
from seedgrid.worker.model_shelf import ModelShelf, ShelfRoom, offer_of
from seedgrid.worker.simulated import SimulatedEngine, is_simulated

log = logging.getLogger(__name__)

DEFAULT_MAX_BATCH = 8


@dataclass
class WorkerRuntime:
    engine: Engine  # a ModelShelf over the served models (tests give an engine of one model as is)
    store: JobStore
    name: str
    vae: str = ""
    turn_images: int | None = None  # images per turn of a large job; None: one batch, 0: the whole job
    merge: bool = True  # fill a batch's spare room with compatible queued jobs of other clients
    started_at: float = field(default_factory=time.time)
    busy: bool = False
    current_job: str = ""
    loading: str = ""  # the model being loaded for current_job
    jobs_done: int = 0
    device_description: tuple[str, float] | None = None
    last_progress: float = field(default_factory=time.monotonic)  # a step, a stored batch, a turn's start
    pool: MergePool = field(init=False)
    leases: Leases = field(init=False)
    held: HeldLeases = field(init=False, default_factory=HeldLeases)  # renewed by the LeaseKeeper thread
    affinity: ModelAffinity | None = None  # with several models: which queue the worker reads first
    lora_library: LoraLibrary | None = None  # the LoRAs it may apply (--loras DIR)

    def __post_init__(self) -> None:
        self.pool = MergePool(self.store.redis, self.store.ttl)
        self.leases = Leases(self.store.redis)

    @classmethod
    def load(
        cls,
        redis_url: str,
        model: str | list[str],
        device: str | None = None,
        vae: str | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
        name: str | None = None,
        turn_images: int | None = None,
        simulated_seconds: float = 0.2,
        simulated_load_seconds: float = 0.0,
        merge: bool = True,
        speedups: tuple[str, ...] = (),
        config: str | None = None,
        models_dir: str | None = None,
        keep: int = 0,
        memory: str = "auto",
        loras_dir: str | None = None,
    ) -> "WorkerRuntime":
        """Find the models (`model`: one or several, plus those in `models_dir`) and load the first in this
        process: call it in the process that runs jobs, never before a fork. The others load when a job needs them."""
        from seedgrid.worker.model_sources import model_sources

        sources = model_sources([model] if isinstance(model, str) else model, models_dir)
        library = LoraLibrary(Path(loras_dir).expanduser()) if loras_dir else None
        shelf: ModelShelf
        if all(is_simulated(source.spec) for source in sources):
            shelf = ModelShelf(
                sources,
                lambda source: SimulatedEngine.loaded(
                    simulated_seconds, max_batch, source.name, simulated_load_seconds
                ),
                "simulated",
                max_batch,
                ShelfRoom(keep=keep),
            )
        elif any(is_simulated(source.spec) for source in sources):
            raise ValueError("model: a simulated model is served alone or with other simulated models only")
        else:
            from seedgrid.worker.models.loading import default_device
            from seedgrid.worker.pipeline_loader import PipelineLoader
            from seedgrid.worker.shelf_room import shelf_room

            device = device or default_device()
            applier = LoraApplier(library) if library else None
            loader = PipelineLoader(device, vae, config, speedups, max_batch, memory, applier)
            room = shelf_room(device, keep)
            shelf = ModelShelf(sources, loader.load, device, max_batch, room, loader.move, release_memory)
        shelf.engine_for(shelf.model_name)
        store = JobStore(connect(redis_url))
        runtime = cls(
            engine=shelf,
            store=store,
            name=name or f"{socket.gethostname()}-{os.getpid()}",
            vae=vae or "",
            turn_images=turn_images,
            merge=merge,
        )
        runtime.lora_library = library
        runtime.refresh_loras()
        return runtime

    @classmethod
    def from_env(cls) -> "WorkerRuntime":
        """For a worker started with plain `celery -A worker.celery_app worker`."""
        settings = get_settings()
        if not settings.redis_url:
            raise SettingsError("SEEDGRID_REDIS_URL: not set; a worker started by celery needs it")
        return cls.load(
            settings.redis_url,
            settings.model,
            settings.device,
            settings.vae,
            settings.max_batch,
            merge=settings.merge,
        )

    def refresh_loras(self) -> list[str]:
        """The LoRA folder read again (files dropped in are served): the names allowed now."""
        if self.lora_library is None:
            return []
        self.lora_library.refresh()
        names = self.lora_library.names()
        if isinstance(self.engine, ModelShelf):
            self.engine.loras = names
        return names

    def lora_hashes(self, request: JobRequest) -> dict[str, str]:
        """A1111's `Lora hashes` of the request's LoRAs."""
        if self.lora_library is None:
            return {}
        return {lora.name: lora_short_hash(self.lora_library.path(lora.name)) for lora in request.loras}

    def model_hash(self, model: str) -> str:
        return self.engine.by_name[model].offer.model_hash if isinstance(self.engine, ModelShelf) else ""

    def family_of(self, model: str) -> str:
        """A served model's family ("sd" for the simulated model)."""
        if isinstance(self.engine, ModelShelf):
            return self.engine.by_name[model].offer.family
        family = getattr(self.engine, "family", None)
        return family.name if family is not None else "sd"

    def turn_ran(self, model: str) -> None:
        if self.affinity is not None and isinstance(self.engine, ModelShelf):
            self.affinity.served(model, list(self.engine.loaded))

    def progressed(self) -> None:
        self.last_progress = time.monotonic()

    def stuck(self) -> bool:
        """Busy with no progress for SEEDGRID_STUCK_SECONDS: a hung GPU loop (driver, kernel, deadlock)."""
        return self.busy and not self.loading and time.monotonic() - self.last_progress > get_settings().stuck_seconds

    @property
    def model_names(self) -> list[str]:
        """Every model this worker serves; the first is the one it loads at start."""
        return list(getattr(self.engine, "model_names", [self.engine.model_name]))

    def memory_plans(self) -> str:
        """How the loaded models sit in memory, with why (PipelineEngines only)."""
        engines = self.engine.loaded.items() if isinstance(self.engine, ModelShelf) else []
        plans = [(name, plan.reason) for name, engine in engines if (plan := getattr(engine, "memory_plan", None))]
        return "; ".join(f"{name}: {reason}" if len(plans) > 1 else reason for name, reason in plans)

    def info(self) -> WorkerInfo:
        if self.device_description is None:
            self.device_description = describe_device(self.engine.device)
        device_name, memory_gb = self.device_description
        if isinstance(self.engine, ModelShelf):
            offers, loads = self.engine.offers(), self.engine.loads
        else:  # an engine given as is (tests): one model, loaded
            offers, loads = [offer_of(self.engine, ModelOffer(name=self.engine.model_name, schedulers=[]))], 1
        first = offers[0]
        return WorkerInfo(
            name=self.name,
            host=socket.gethostname(),
            pid=os.getpid(),
            model=first.name,
            device=self.engine.device,
            device_name=device_name,
            device_memory_gb=memory_gb,
            vae=self.vae,
            max_batch=self.engine.max_batch,
            # The first model's family, defaults and schedulers, as older clients read them.
            **first.model_dump(include=TAKES_FIELDS),
            models=offers,
            model_loads=loads,
            loras=self.refresh_loras(),
            memory_plan=self.memory_plans(),
            busy=self.busy,
            current_job=self.current_job,
            loading=self.loading,
            jobs_done=self.jobs_done,
            started_at=self.started_at,
        )


def describe_device(device: str) -> tuple[str, float]:
    """(name, memory in GB) of a CUDA device, or of this machine for anything else."""
    if device.startswith("cuda"):
        import torch

        props = torch.cuda.get_device_properties(torch.device(device))
        return props.name, round(props.total_memory / 1e9, 1)
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 0
    return device, round(memory / 1e9, 1)
