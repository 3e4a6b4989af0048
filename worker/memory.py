"""Out of memory on the accelerator: recognised on every supported torch, cleaned up after, learned from.

Torch is imported only when needed, so torch-free code (a turn, the simulated engine) can import OutOfMemory.
"""

import gc

Size = tuple[int, int]  # (width, height) of an image


class OutOfMemory(RuntimeError):
    """A job that does not fit even at batch 1; its message is one line, meant for the job's owner."""


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA's (and ROCm's) OOM class, or a RuntimeError saying so (MPS, the CPU's allocator, other backends)."""
    import torch

    # torch.OutOfMemoryError is new in torch 2.5; torch.cuda.OutOfMemoryError (the same class since) is older.
    classes = (torch.cuda.OutOfMemoryError, getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError))
    text = str(exc).lower() if isinstance(exc, RuntimeError) else ""
    return isinstance(exc, classes) or "out of memory" in text or "not enough memory" in text


def release_memory() -> None:
    """Free what a failed allocation left behind; call it after the exception (and its frames) is gone."""
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    mps = getattr(torch, "mps", None)
    if mps is not None and torch.backends.mps.is_available():
        mps.empty_cache()


class BatchLimits:
    """The largest batch to try per image size, learned from out-of-memory errors.

    A size that ran out of memory at batch n is tried at (n + 1) // 2, and so on down to 1; the batch
    that fit stays that size's limit for later jobs. Memory grows with batch x pixels, so a size with
    at least as many pixels as a limited size starts no higher than that limit. Every other size
    starts at the engine's configured maximum.
    """

    def __init__(self) -> None:
        self.limits: dict[Size, int] = {}

    def start(self, size: Size, maximum: int) -> int:
        pixels = size[0] * size[1]
        known = [batch for (w, h), batch in self.limits.items() if w * h <= pixels]
        return max(1, min([maximum, *known]))

    def failed(self, size: Size, batch: int) -> int:
        """Out of memory at `batch`: the batch to try next, now this size's limit."""
        smaller = max(1, (batch + 1) // 2)
        self.limits[size] = min(self.limits.get(size, smaller), smaller)
        return smaller
