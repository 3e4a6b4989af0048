"""What the end-to-end tests of the model families (test_end_to_end_sdxl.py, test_end_to_end_flux.py) share:
a Redis of their own for a worker of a tiny built-in model, and the checks of the images it serves."""

import io
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from PIL import Image

from seedgrid.client.api import SeedgridClient
from seedgrid.shared.embedded_redis import EmbeddedRedis
from seedgrid.shared.pngmeta import read_png_metadata
from seedgrid.shared.request import JobRequest
from tests.conftest import WorkerFactory
from tests.family_checks import cpu_engine
from tests.helpers import max_pixel_diff, pixels


@contextmanager
def own_redis_and_workers(tmp_path) -> Iterator[tuple[SeedgridClient, WorkerFactory]]:
    """A Redis of its own, so no other test sees its workers: (client, worker factory); the workers stop at the end."""
    with EmbeddedRedis() as redis_server:
        factory = WorkerFactory(redis_server.url, tmp_path)
        try:
            with SeedgridClient(redis_server.url) as client:
                yield client, factory
        finally:
            factory.stop_all()


def checked_pngs_by_seed(client: SeedgridClient, job_id: str, request: JobRequest, parameters: str) -> dict[int, bytes]:
    """The job's PNGs by seed, one per seed of `request`, each of its size and carrying the request and item in its
    metadata, and `parameters` (formatted with its seed) in its A1111 parameters text."""
    pngs = {r.seed: client.image_png(job_id, r.index) for r in client.images(job_id)}
    assert sorted(pngs) == sorted(request.seeds)
    for seed, png in pngs.items():
        meta = read_png_metadata(png)
        assert meta.request == request and meta.item.seed == seed
        assert parameters.format(seed=seed) in meta.parameters
        assert Image.open(io.BytesIO(png)).size == (request.width, request.height)
    return pngs


def check_a_seed_alone_here_gives_the_workers_image(request: JobRequest, pngs: dict[int, bytes], seed: int, other: int):
    """`seed` alone, made in this process, gives the same image as the worker's, made in a batch; `other`'s differs."""
    alone = request.model_copy(update={"seeds": [seed]})
    made: list = []
    engine = cpu_engine(request.model)
    engine.run(alone, alone.items(), lambda *_: None, lambda batch, images: made.extend(images))
    here = np.asarray(made[0].convert("RGB"), dtype=np.int16)
    assert int(np.abs(pixels(pngs[seed]) - here).max()) <= 2
    assert max_pixel_diff(pngs[other], pngs[seed]) > 20
