"""A worker process's state: its engine, its Redis, its name, and what it is doing."""

import logging
import os
import socket
import time
from dataclasses import dataclass, field

from seedgrid.shared.jobstore import JobStore
from seedgrid.shared.leases import HeldLeases, Leases
from seedgrid.shared.mergepool import MergePool
from seedgrid.shared.redis_conn import connect
from seedgrid.shared.settings import SettingsError, get_settings
from seedgrid.shared.workers import WorkerInfo
from seedgrid.worker.engine_api import Engine
from seedgrid.worker.simulated import SIMULATED_MODEL_NAME, SimulatedEngine

log = logging.getLogger(__name__)

DEFAULT_MAX_BATCH = 8


@dataclass
class WorkerRuntime:
    engine: Engine  # a PipelineEngine, or a SimulatedEngine
    store: JobStore
    name: str
    vae: str = ""
    turn_images: int | None = None  # images per turn of a large job; None: one batch, 0: the whole job
    merge: bool = True  # fill a batch's spare room with compatible queued jobs of other clients
    started_at: float = field(default_factory=time.time)
    busy: bool = False
    current_job: str = ""
    jobs_done: int = 0
    device_description: tuple[str, float] | None = None
    last_progress: float = field(default_factory=time.monotonic)  # a step, a stored batch, a turn's start
    pool: MergePool = field(init=False)
    leases: Leases = field(init=False)
    held: HeldLeases = field(init=False, default_factory=HeldLeases)  # renewed by the LeaseKeeper thread

    def __post_init__(self) -> None:
        self.pool = MergePool(self.store.redis, self.store.ttl)
        self.leases = Leases(self.store.redis, self.engine.model_name)

    @classmethod
    def load(
        cls,
        redis_url: str,
        model: str,
        device: str | None = None,
        vae: str | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
        name: str | None = None,
        turn_images: int | None = None,
        simulated_seconds: float = 0.2,
        merge: bool = True,
        speedups: tuple[str, ...] = (),
        config: str | None = None,
    ) -> "WorkerRuntime":
        """Load the model in this process: call it in the process that runs jobs, never before a fork."""
        engine: Engine
        if model == SIMULATED_MODEL_NAME:
            engine = SimulatedEngine(simulated_seconds, max_batch)
        else:
            from seedgrid.worker.engine import PipelineEngine
            from seedgrid.worker.models.loading import default_device, load_pipeline, model_display_name
            from seedgrid.worker.speedups import apply_speedups

            device = device or default_device()
            pipeline = load_pipeline(model, device, vae, config=config)
            apply_speedups(pipeline, speedups, device)
            pipeline_engine = PipelineEngine(pipeline, model_display_name(model), device, max_batch=max_batch)
            engine = pipeline_engine
            if "compile" in speedups:
                seconds = pipeline_engine.warm_up(batches=sorted({1, max_batch}))
                width, height = pipeline_engine.family.default_size
                log.info(
                    "warm-up of the compiled UNet at %dx%d, batch 1 and %d: %.1f s", width, height, max_batch, seconds
                )
        store = JobStore(connect(redis_url))
        return cls(
            engine=engine,
            store=store,
            name=name or f"{socket.gethostname()}-{os.getpid()}",
            vae=vae or "",
            turn_images=turn_images,
            merge=merge,
        )

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

    @property
    def family_name(self) -> str:
        """The served model's family ("sd" for the simulated model)."""
        family = getattr(self.engine, "family", None)
        return family.name if family is not None else "sd"

    def progressed(self) -> None:
        self.last_progress = time.monotonic()

    def stuck(self) -> bool:
        """Busy with no progress for SEEDGRID_STUCK_SECONDS: a hung GPU loop (driver, kernel, deadlock)."""
        return self.busy and time.monotonic() - self.last_progress > get_settings().stuck_seconds

    def info(self) -> WorkerInfo:
        if self.device_description is None:
            self.device_description = describe_device(self.engine.device)
        device_name, memory_gb = self.device_description
        # A PipelineEngine's family, defaults and what it takes; the simulated model keeps WorkerInfo's (SD's).
        family_info = getattr(self.engine, "family_info", None)
        takes = family_info() if family_info else {}
        return WorkerInfo(
            name=self.name,
            host=socket.gethostname(),
            pid=os.getpid(),
            model=self.engine.model_name,
            device=self.engine.device,
            device_name=device_name,
            device_memory_gb=memory_gb,
            vae=self.vae,
            schedulers=self.engine.schedulers,
            max_batch=self.engine.max_batch,
            **takes,
            busy=self.busy,
            current_job=self.current_job,
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
