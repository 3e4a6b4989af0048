"""With several workers of the same models, a job goes to an idle worker that has its model loaded: simulated
models (no torch, so the workers start in a second) on real worker processes and a real Redis."""

import time

import pytest

from seedgrid.client.api import SeedgridClient
from seedgrid.shared.embedded_redis import EmbeddedRedis
from seedgrid.shared.job import JobState
from seedgrid.shared.request import JobRequest
from tests.conftest import WorkerFactory

A, B = "simulated-a", "simulated-b"


@pytest.mark.processes
def test_a_job_goes_to_the_idle_worker_that_has_its_model_loaded(tmp_path):
    with EmbeddedRedis() as redis_server:
        factory = WorkerFactory(redis_server.url, tmp_path)
        try:
            common = ["--keep", "1", "--simulated-seconds", "0.01"]
            # Each serves both models and loads its first at start: has-a has A loaded, has-b has B.
            factory.start(name="has-a", model=A, extra_args=["--model", B, *common], wait=False)
            factory.start(name="has-b", model=B, extra_args=["--model", A, *common], wait=False)
            with SeedgridClient(redis_server.url) as client:
                for worker in factory.workers:
                    factory.wait_online(worker)
                time.sleep(3)  # Celery consumes a moment after the first heartbeat
                ran_on = []
                for model in [B, A, B, B, A, A, B, A]:  # one at a time: both workers idle at each
                    request = JobRequest(model=model, prompts=["p"], seeds=[0], steps=2, width=64, height=64)
                    status = client.wait(client.submit(request), timeout=60)
                    assert status.state == JobState.SUCCEEDED, status.error
                    ran_on.append((model, status.worker))
                assert ran_on == [(m, "has-a" if m == A else "has-b") for m, _ in ran_on]
                time.sleep(2.5)  # a heartbeat after the last job
                loads = {w.name: w.model_loads for w in client.workers()}
                assert loads == {"has-a": 1, "has-b": 1}  # neither loaded the other's model
        finally:
            factory.stop_all()
