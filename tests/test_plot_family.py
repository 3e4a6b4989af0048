"""`seedgrid plot` takes what its options and axes leave out from the served model, as generate does: a worker's
heartbeat written into a private Redis stands in for the worker (no worker process; the jobs stay queued)."""

import json

import pytest

from seedgrid.client.cli.main import main
from seedgrid.shared import names
from seedgrid.shared.embedded_redis import EmbeddedRedis
from seedgrid.shared.jobstore import JobStore
from seedgrid.shared.redis_conn import connect
from seedgrid.shared.workers import WorkerInfo

FLUX_LIKE = WorkerInfo(
    name="flux-plot-worker", host="here", pid=1, model="flux-like", device="cpu", schedulers=["euler"], max_batch=4,
    family="flux", default_width=1024, default_height=768, default_steps=4, default_guidance=0.0,
    negative_prompt=False, size_multiple=16,
)  # fmt: skip


@pytest.fixture
def server():
    with EmbeddedRedis() as s:
        r = connect(s.url)
        r.set(names.worker_key(FLUX_LIKE.name), FLUX_LIKE.model_dump_json(), ex=60)
        r.sadd(names.WORKERS_KEY, FLUX_LIKE.name)
        yield s, r
        r.close()


def test_plot_takes_the_served_models_size_steps_guidance_and_scheduler_when_left_out(server, tmp_path, capsys):
    redis_server, r = server
    argv = ["plot", "a fox", "--model", "flux-like", "--x", "seed=0,1", "--redis", redis_server.url]
    assert main([*argv, "--steps", "6", "--timeout", "0.2", "--out", str(tmp_path)]) == 1, capsys.readouterr().err
    doc = json.loads((tmp_path / "plot.json").read_text())
    store = JobStore(r)
    [request] = [store.status(job["job_id"]).request for job in doc["jobs"]]
    assert (request.width, request.height, request.guidance, request.scheduler) == (1024, 768, 0.0, "euler")
    assert request.steps == 6 and request.seeds == [0, 1]  # given: kept
