"""The pipeline engine: owns one loaded pipeline and turns job items into images."""

import copy
import logging
import time
from collections.abc import Sequence
from typing import Any

import torch
from diffusers import DiffusionPipeline
from PIL import Image

from seedgrid.shared.family_rules import check_family
from seedgrid.shared.request import JobRequest, RequestError
from seedgrid.worker.cancel import JobCancelled
from seedgrid.worker.engine_api import BatchCallback, ItemT, PreviewCallback, StepCallback
from seedgrid.worker.families import family_of
from seedgrid.worker.loras import LoraApplier
from seedgrid.worker.memory import BatchLimits, OutOfMemory, is_out_of_memory, release_memory
from seedgrid.worker.memory_plan import MemoryPlan
from seedgrid.worker.preview import latents_to_rgb, preview_interval
from seedgrid.worker.schedulers import compatible_scheduler_names, make_scheduler

log = logging.getLogger(__name__)

__all__ = ["JobCancelled", "OutOfMemory", "PipelineEngine", "is_out_of_memory"]


class PipelineEngine:
    """One loaded pipeline and its optimizations; per job it picks a scheduler, batches and decodes.

    What differs between model families (prompt encoding, conditioning, previews) is the family's.
    """

    def __init__(self, pipeline: DiffusionPipeline, model_name: str, device: str, max_batch: int = 8):
        self.pipeline = pipeline
        self.family = family_of(pipeline)
        self.model_name = model_name
        self.device = device
        self.dtype = self.family.denoiser(pipeline).dtype
        self.max_batch = max_batch  # as configured; out of memory lowers only `limits`
        self.limits = BatchLimits()
        self.schedulers = compatible_scheduler_names(pipeline.scheduler, self.family.schedulers)
        self.preview_every: int | None = None  # steps between previews; None: preview_interval(steps); 0: none
        self._vae_float32 = None
        self.lora_applier: LoraApplier | None = None  # puts a job's LoRAs on the pipeline (--loras DIR)
        self.model_hash = ""  # A1111's short hash of the checkpoint file; "" for folders, hub ids, built-in models
        self.memory_plan = MemoryPlan("full", False, f"full: on {device}")  # how it sits in memory; set by its loader

    def check(self, request: JobRequest) -> None:
        """Refuse what this engine cannot serve, naming the field."""
        if request.model != self.model_name:
            raise RequestError("model", f"this worker serves {self.model_name!r}, not {request.model!r}")
        if request.scheduler not in self.schedulers:
            rule = "one of " + ", ".join(self.schedulers)
            raise RequestError("scheduler", f"{request.scheduler} is not compatible with {self.model_name}", rule=rule)
        family = self.family
        check_family(request, family.name, family.negative_prompt, family.size_multiple)

    def family_info(self) -> dict[str, Any]:
        """The WorkerInfo fields of this model's family: its defaults and what it takes."""
        family, pipeline = self.family, self.pipeline
        width, height = family.default_size
        return {
            "family": family.name,
            "default_width": width,
            "default_height": height,
            "default_steps": family.default_steps(pipeline),
            "default_guidance": family.default_guidance(pipeline),
            "negative_prompt": family.negative_prompt,
            "size_multiple": family.size_multiple,
        }

    def run(
        self,
        request: JobRequest,
        items: Sequence[ItemT],
        on_step: StepCallback[ItemT],
        on_batch: BatchCallback[ItemT],
        on_preview: PreviewCallback[ItemT] | None = None,
    ) -> None:
        """Generate `items` in batches that fit (see BatchLimits); out of memory retries the batch smaller.

        OutOfMemory (one line, for the job's owner) when even batch 1 does not fit.
        """
        size = (request.width, request.height)
        batch_size = self.limits.start(size, self.max_batch)
        pending = list(items)
        while pending:
            batch = pending[:batch_size]
            images = self._generate_or_none(request, batch, on_step, on_preview)
            if images is None:
                release_memory()
                next_size = self.limits.failed(size, len(batch))
                if len(batch) == 1:
                    raise OutOfMemory(f"out of memory at {size[0]}x{size[1]}, batch 1: try a smaller size")
                log.warning("out of memory at %dx%d, batch %d; retrying at %d", *size, len(batch), next_size)
                batch_size = next_size
                continue
            del pending[: len(batch)]
            on_batch(batch, images)

    def _generate_or_none(self, request, batch, on_step, on_preview) -> list[Image.Image | None] | None:
        """generate_batch, or None when it ran out of memory (the error and its tensors are gone on return)."""
        try:
            return self.generate_batch(request, batch, on_step, on_preview)
        except Exception as exc:
            if is_out_of_memory(exc):
                return None
            raise

    def warm_up(self, width: int | None = None, height: int | None = None, batches: Sequence[int] = (1,)) -> float:
        """A short job at each batch size (default: the family's size), so compiled graphs exist; seconds taken."""
        started = time.perf_counter()
        width, height = width or self.family.default_size[0], height or self.family.default_size[1]
        default = JobRequest.model_fields["scheduler"].default
        scheduler = default if default in self.schedulers else self.schedulers[0]
        for batch in batches:
            request = JobRequest(
                model=self.model_name,
                prompts=["warm-up"],
                seeds=list(range(batch)),
                width=width,
                height=height,
                steps=2,
                scheduler=scheduler,
            )
            self.generate_batch(request, request.items(), lambda *_: None)
        return time.perf_counter() - started

    def generate_batch(
        self,
        request: JobRequest,
        batch: Sequence[ItemT],
        on_step: StepCallback[ItemT],
        on_preview: PreviewCallback[ItemT] | None = None,
    ) -> list[Image.Image | None]:
        """Denoise one batch; None marks an image that stayed NaN or black."""
        pipe = self._pipeline_for(request)
        if self.lora_applier is not None:  # exactly the job's LoRAs, or none
            try:
                self.lora_applier.apply(pipe, [(lora.name, lora.weight) for lora in request.loras])
            except ValueError as exc:  # not allowed (any more), or made for another model: the job's, in one line
                problem = str(exc).removeprefix("loras: ").splitlines()[0][:200]
                raise RequestError("loras", problem, rule="") from exc
        elif request.loras:
            raise RequestError(
                "loras", "this worker applies no LoRAs", rule="none: a worker allows LoRAs with --loras DIR"
            )
        generators = [torch.Generator("cpu").manual_seed(item.seed) for item in batch]
        latents = self.initial_noise(request, generators)
        steps = request.steps
        every = self.preview_interval(steps) if on_preview else 0
        reported = 0

        def step_end(pipe_, index, _timestep, kwargs):
            # Heun, DPM2 and PNDM run more denoising loop iterations than steps; report each step 1..n once.
            nonlocal reported
            before = reported
            done = (index + 1) * steps // pipe_.num_timesteps
            while reported < done:
                reported += 1
                on_step(reported, steps, batch)
            # The final image follows at once, so the last step gets no preview.
            if every and reported < steps and reported // every > before // every:
                normalized = self.family.preview_latents(pipe_, kwargs["latents"], request)
                on_preview(batch, reported, latents_to_rgb(normalized, self.family.latent_rgb))
            return kwargs

        with torch.inference_mode():
            out = pipe(
                **self.family.call_arguments(pipe, request, batch),
                width=request.width,
                height=request.height,
                num_inference_steps=steps,
                guidance_scale=request.guidance,
                generator=generators,
                latents=latents,
                output_type="latent",
                callback_on_step_end=step_end,
                callback_on_step_end_tensor_inputs=["latents"],
            )
            return self.decode(out.images, request)

    def preview_interval(self, steps: int) -> int:
        return preview_interval(steps) if self.preview_every is None else self.preview_every

    def initial_noise(self, request: JobRequest, generators: list[torch.Generator]) -> torch.Tensor:
        """One CPU generator per image, so a seed gives the same noise in any batch and on any device."""
        noise = torch.cat([self.family.noise(self.pipeline, request, g) for g in generators])
        return noise.to(self.device, self.dtype)

    @torch.inference_mode()
    def decode(self, latents: torch.Tensor, request: JobRequest | None = None) -> list[Image.Image | None]:
        """VAE-decode the pipeline's latents (in the VAE's own dtype); `request`: their size, for packed latents.

        A NaN or black image is decoded again with the VAE in float32."""
        vae = self.pipeline.vae
        latents = self.family.vae_latents(self.pipeline, latents.float(), request)
        pixels = _vae_decode(vae, latents.to(vae.dtype))
        bad = _bad_images(pixels)
        if bad.any() and vae.dtype != torch.float32:
            log.warning("%d NaN or black image(s); decoding again with the VAE in float32", int(bad.sum()))
            vae32 = self._float32_vae()
            redo = _vae_decode(vae32, latents[bad].float())
            pixels = pixels.float()
            pixels[bad] = redo
            bad = _bad_images(pixels)
        images = self.pipeline.image_processor.postprocess(pixels.float(), output_type="pil")
        return [None if flag else image for image, flag in zip(images, bad.tolist(), strict=True)]

    def _float32_vae(self):
        if self._vae_float32 is None:
            self._vae_float32 = copy.deepcopy(self.pipeline.vae).to(torch.float32)
        return self._vae_float32

    def _pipeline_for(self, request: JobRequest) -> DiffusionPipeline:
        """A fresh pipeline object over the shared components, with this job's own scheduler."""
        self.check(request)
        components = dict(self.pipeline.components)
        components["scheduler"] = make_scheduler(self.pipeline.scheduler, request.scheduler, self.family.schedulers)
        pipe = self.family.pipeline_over(components, self.pipeline)
        pipe.set_progress_bar_config(disable=True)
        return pipe


def _vae_decode(vae, z: torch.Tensor) -> torch.Tensor:
    """Decode; out of memory decodes the same latents again one image at a time, in tiles (large images)."""
    try:
        return vae.decode(z, return_dict=False)[0]
    except Exception as exc:
        if not is_out_of_memory(exc) or (vae.use_tiling and vae.use_slicing):
            raise
    release_memory()
    log.warning("out of memory in the VAE decode of %d image(s); decoding again in tiles, one at a time", len(z))
    tiling, slicing = vae.use_tiling, vae.use_slicing
    vae.use_tiling = vae.use_slicing = True  # as enable_tiling() and enable_slicing(), for this decode only
    try:
        return vae.decode(z, return_dict=False)[0]
    finally:
        vae.use_tiling, vae.use_slicing = tiling, slicing


def _bad_images(pixels: torch.Tensor) -> torch.Tensor:
    """Per image: any NaN, or every pixel black (decoder output is in -1..1)."""
    flat = pixels.flatten(1)
    return torch.isnan(flat).any(dim=1) | (flat.amax(dim=1) <= -0.99)
