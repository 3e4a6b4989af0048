"""How many models a worker keeps loaded: `--keep N`, or (0, the default) as many as the device's free memory
takes; models moved off a GPU are parked in CPU memory while RAM has room for them."""

import os

from seedgrid.worker.model_shelf import ShelfRoom

HEADROOM_BYTES = 2 * 1024**3  # left free on the device for activations and the VAE decode, besides the weights
RAM_SPARE_BYTES = 4 * 1024**3  # left free in RAM when parking a model there


def shelf_room(device: str, keep: int = 0) -> ShelfRoom:
    if keep < 0:
        raise ValueError("--keep: at least 0 (0: as many models as memory takes)")
    return ShelfRoom(keep=keep, fits=lambda size: fits_device(device, size), parks=parks_in_ram)


def fits_device(device: str, size_bytes: int) -> bool:
    """Whether a model of `size_bytes` loads next to what is on the device now."""
    if device.startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return free >= size_bytes + HEADROOM_BYTES
    return parks_in_ram(size_bytes)


def parks_in_ram(size_bytes: int) -> bool:
    return available_ram() >= size_bytes + RAM_SPARE_BYTES


def available_ram() -> int:
    try:
        import psutil  # the worker extra has it; a bare GPU image may not
    except ImportError:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return psutil.virtual_memory().available
