"""Loads one served model into a PipelineEngine as the worker was told: device, VAE, configs, speedups."""

import logging
from dataclasses import dataclass
from pathlib import Path

from seedgrid.shared.model_hash import model_short_hash
from seedgrid.worker.engine import PipelineEngine
from seedgrid.worker.engine_api import Engine
from seedgrid.worker.loras import LoraApplier
from seedgrid.worker.model_shelf import ModelSource
from seedgrid.worker.models.loading import load_placed
from seedgrid.worker.speedups import apply_speedups

log = logging.getLogger(__name__)


@dataclass
class PipelineLoader:
    device: str
    vae: str | None = None  # for the models of the first loaded model's family (another family's VAE does not fit)
    config: str | None = None  # for single .safetensors files of the first loaded model's family
    speedups: tuple[str, ...] = ()
    max_batch: int = 8
    memory: str = "auto"  # see MEMORY_MODES
    loras: LoraApplier | None = None  # with --loras DIR
    family: str = ""  # the first loaded model's

    def load(self, source: ModelSource) -> Engine:
        same_family = not self.family or source.offer.family == self.family
        vae = self.vae if same_family else None
        config = self.config if same_family and source.spec.lower().endswith(".safetensors") else None
        if self.vae and not same_family:
            log.info("model %s is a %s model: loaded with its own VAE, not --vae", source.name, source.offer.family)
        pipeline, plan = load_placed(source.spec, self.device, vae, config=config, memory=self.memory)
        apply_speedups(pipeline, self.speedups, self.device)
        engine = PipelineEngine(pipeline, source.name, self.device, max_batch=self.max_batch)
        engine.memory_plan = plan
        engine.lora_applier = self.loras
        if Path(source.spec).is_file():  # A1111's `Model hash` names a checkpoint file
            engine.model_hash = model_short_hash(source.spec)
        self.family = self.family or engine.family.name
        if "compile" in self.speedups:
            seconds = engine.warm_up(batches=sorted({1, self.max_batch}))
            width, height = engine.family.default_size
            log.info(
                "warm-up of the compiled %s at %dx%d, batch 1 and %d: %.1f s",
                source.name,
                width,
                height,
                self.max_batch,
                seconds,
            )
        return engine

    def move(self, engine: Engine, device: str) -> None:
        """Park a model's modules in CPU memory, or bring them back to the device (an offloaded model stays as is)."""
        if isinstance(engine, PipelineEngine) and engine.memory_plan.mode == "full":
            engine.pipeline.to(device)
