"""`seedgrid worker` under a SIMULATED GPU memory limit, for tests/test_oom.py (a CPU has none).

A batch of more than $OOM_TEST_BUDGET pixels (batch x width x height) raises torch's
out-of-memory error instead of being generated; each batch tried is printed for the test.
"""

import os
import sys

import torch

from seedgrid.worker.cli import main
from seedgrid.worker.engine import PipelineEngine

BUDGET = int(os.environ["OOM_TEST_BUDGET"])
real_generate_batch = PipelineEngine.generate_batch


def generate_batch(self, request, batch, on_step, on_preview=None):
    fits = len(batch) * request.width * request.height <= BUDGET
    print(f"simulated memory: batch {len(batch)} at {request.width}x{request.height} {'fits' if fits else 'OOM'}")
    sys.stdout.flush()
    if not fits:
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
    return real_generate_batch(self, request, batch, on_step, on_preview)


PipelineEngine.generate_batch = generate_batch
sys.exit(main())
