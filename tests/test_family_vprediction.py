"""v-prediction Stable Diffusion checkpoints (SD 2.x 768, v-pred fine-tunes): a single file with SD 2.x's OpenCLIP
text encoder is family "sd", the v-prediction marker sets its scheduler, and every scheduler a job gets keeps it."""

import numpy as np
import torch
from diffusers import StableDiffusionPipeline
from safetensors.torch import save_file

from seedgrid.shared.request import JobRequest
from seedgrid.worker.engine import PipelineEngine
from seedgrid.worker.models.detect import detect_family
from seedgrid.worker.models.loading import load_pipeline
from seedgrid.worker.models.tiny import build_tiny_pipeline
from seedgrid.worker.schedulers import SCHEDULER_CLASSES, make_scheduler

NAME = "v2-768-vpred"


def test_a_v_prediction_sd2_file_keeps_it_in_every_scheduler_and_gives_finite_images(tmp_path, monkeypatch):
    checkpoint = tmp_path / f"{NAME}.safetensors"
    keys = {
        "cond_stage_model.model.transformer.resblocks.0.ln_1.weight": torch.ones(4),  # SD 2.x's OpenCLIP
        "model.diffusion_model.out.2.bias": torch.zeros(4),
        "v_pred": torch.tensor([]),  # the marker A1111, Forge and ComfyUI read
    }
    save_file(keys, str(checkpoint))
    assert detect_family(str(checkpoint)) == "sd"
    # diffusers' conversion of the original layout stands aside: the tiny pipeline (an epsilon scheduler) is
    # what it would give; what the worker does with the file's marker is under test.
    loaded = classmethod(lambda cls, *args, **kwargs: build_tiny_pipeline())
    monkeypatch.setattr(StableDiffusionPipeline, "from_single_file", loaded)
    pipeline = load_pipeline(str(checkpoint), "cpu")
    assert pipeline.scheduler.config.prediction_type == "v_prediction"
    engine = PipelineEngine(pipeline, NAME, "cpu")
    assert engine.schedulers == list(SCHEDULER_CLASSES)
    for name in SCHEDULER_CLASSES:
        assert make_scheduler(pipeline.scheduler, name).config.prediction_type == "v_prediction", name
        request = JobRequest(model=NAME, prompts=["a lighthouse"], seeds=[1], width=64, height=64, steps=2,
                             scheduler=name)  # fmt: skip
        [image] = engine.generate_batch(request, request.items(), lambda *_: None)
        assert image is not None, name  # None: NaN or black even after a float32 decode
        assert np.isfinite(np.asarray(image, dtype=np.float32)).all() and np.asarray(image).std() > 0, name
