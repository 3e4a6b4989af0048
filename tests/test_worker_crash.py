"""Kill -9 a worker in the middle of a job: another worker runs it again and each image is stored once."""

import signal

import pytest

from seedgrid.client.api import SeedgridClient
from seedgrid.shared.embedded_redis import EmbeddedRedis
from seedgrid.shared.job import JobState
from seedgrid.shared.pngmeta import read_png_metadata
from seedgrid.shared.request import JobRequest
from tests.conftest import WorkerFactory
from tests.helpers import wait_until

# Every test here starts worker, Redis or CLI processes.
pytestmark = pytest.mark.processes


def test_kill_9_mid_job_reruns_on_another_worker_and_stores_each_image_once(tmp_path):
    with EmbeddedRedis() as redis_server:  # its own Redis: no other test's worker may take this job
        factory = WorkerFactory(redis_server.url, tmp_path)
        try:
            # The simulated model (the same runner and stores as a real one, no torch) boots in a second.
            args = {"model": "simulated", "extra_args": ["--max-batch", "2", "--simulated-seconds", "0.4"]}
            first = factory.start(name="first", **args)
            request = JobRequest(
                model="simulated", prompts=["a crash test"], seeds=list(range(8)), steps=12, width=64, height=64
            )
            with SeedgridClient(redis_server.url) as client:
                job_id = client.submit(request)
                # The job is the first worker's until it dies: only then does a second one come online.
                # Mid-turn, after the first batch is stored: the running turn dies unacknowledged.
                wait_until(
                    lambda: (
                        (s := client.status(job_id)).images_done >= 2 and s.state == JobState.RUNNING and s.step >= 1
                    ),
                    timeout=120,
                    interval=0.01,
                    message="the second batch to run",
                )
                first.process.send_signal(signal.SIGKILL)
                first.process.wait(10)
                made_before_kill = {r.index for r in client.images(job_id)}
                second = factory.start(name="second", **args)

                final = client.wait(job_id, timeout=120)
                assert final.state == JobState.SUCCEEDED, final.error
                assert final.attempts == 2 and final.worker == second.name
                records = client.images(job_id)
                assert [r.index for r in records] == list(range(8))  # once each: the store refuses a second write
                by_worker = {r.index: r.worker for r in records}
                assert all(by_worker[i] == "first" for i in made_before_kill)
                assert {i for i, w in by_worker.items() if w == "second"} == set(range(8)) - made_before_kill
                for r in records:
                    assert read_png_metadata(client.image_png(job_id, r.index)).item.seed == r.seed
        finally:
            factory.stop_all()
