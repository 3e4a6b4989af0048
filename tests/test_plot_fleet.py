"""A plot spread over two worker processes finishes with each cell stored once, under its own (job, index) and with
its own settings in the PNG. SIMULATED models: the workers start in a second, without torch."""

import pytest

from bench.fleet import SIM, stop_fleet
from bench.plots import warm_up
from seedgrid.client.api import SeedgridClient
from seedgrid.client.local import LocalWorker
from seedgrid.shared.embedded_redis import EmbeddedRedis
from seedgrid.shared.job import JobState
from seedgrid.shared.plot import make_plot
from seedgrid.shared.pngmeta import read_png_metadata
from seedgrid.shared.request import JobRequest

pytestmark = pytest.mark.processes

NAMES = ("plot-sim-a", "plot-sim-b")


def test_a_plot_over_two_workers_stores_each_cell_once_with_its_settings(tmp_path):
    base = JobRequest(model=SIM, prompts=["a lighthouse"], seeds=[0], width=64, height=64)
    plot = make_plot(base, x="steps=2-9", y="seed=0-3")
    assert (len(plot.cells), len(plot.jobs)) == (32, 8)  # a job per steps value
    with EmbeddedRedis() as server:
        workers = {
            name: LocalWorker(
                server.url,
                SIM,
                None,
                log_path=str(tmp_path / f"{name}.log"),
                extra_args=["--simulated-seconds", "0.05", "--name", name],
            )
            for name in NAMES
        }
        try:
            with SeedgridClient(server.url) as client:
                warm_up(client, workers, base, timeout=60)  # both consume before the plot is queued
                submitted = client.submit_plot(plot)
                statuses = client.wait_plot(submitted, timeout=120)
                assert [s.state for s in statuses.values()] == [JobState.SUCCEEDED] * 8, [
                    s.error for s in statuses.values()
                ]
                records = {job_id: client.images(job_id) for job_id in submitted.job_ids}
                for i, cell in enumerate(plot.cells):
                    job_id, index = submitted.cell_job(i)
                    [record] = [r for r in records[job_id] if r.index == index]
                    assert record.seed == cell.request.seeds[0]
                    meta = read_png_metadata(client.image_png(job_id, index))
                    assert meta.request is not None and meta.item is not None
                    assert (meta.request.steps, meta.item.seed) == (cell.request.steps, cell.request.seeds[0])
                # Nothing stored beyond the cells: every image record is one cell's.
                stored = sorted((job_id, r.index) for job_id, rs in records.items() for r in rs)
                assert stored == sorted(submitted.cell_job(i) for i in range(len(plot.cells)))
                assert {s.worker for s in statuses.values()} == set(NAMES)
        finally:
            stop_fleet(list(workers.values()))
