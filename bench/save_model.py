"""Write SD1.5's architecture with random weights as a diffusers folder, for benchmarks that start workers.

    python -m bench.save_model DIR [--device cuda]

A worker process loads the folder as it loads a real checkpoint (float16 on CUDA), so a queue
benchmark on the GPU runs SD1.5's real cost with nothing downloaded.
"""

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from seedgrid.worker.models.loading import dtype_for


def save_random_model(folder: Path, device: str, build: Callable[[torch.dtype, str], object] | None = None) -> Path:
    if build is None:
        from bench.sd15_configs import build_sd15_random as build
    pipeline = build(dtype_for(device), device)
    pipeline.save_pretrained(folder, safe_serialization=True)
    return folder


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.save_model", description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    args = parser.parse_args(argv)
    save_random_model(args.folder, args.device)
    print(f"SD1.5 with random weights written to {args.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
