"""Dynamic batching: compatible queued jobs of different clients share a GPU batch, each image from its seed."""

import signal
import uuid

import pytest

from seedgrid.client.api import SeedgridClient
from seedgrid.shared.embedded_redis import EmbeddedRedis
from seedgrid.shared.job import JobState
from seedgrid.shared.request import JobRequest
from tests.conftest import WorkerFactory
from tests.helpers import max_pixel_diff, pixels, wait_until

SIMULATED = {"model": "simulated", "width": 64, "height": 64}
# Every batch here is far shorter than this, so a job is only redelivered when its worker died.
CRASH_VISIBILITY_TIMEOUT = "4"


@pytest.fixture
def stack(tmp_path):
    """A Redis of the test's own (no other test's worker may take its jobs) and a worker factory on it."""
    with EmbeddedRedis() as server:
        factory = WorkerFactory(server.url, tmp_path, visibility_timeout=CRASH_VISIBILITY_TIMEOUT)
        try:
            yield server.url, factory
        finally:
            factory.stop_all()


def simulated_worker(factory: WorkerFactory, name: str, seconds: float, *extra: str):
    return factory.start(name=name, model="simulated", extra_args=["--simulated-seconds", str(seconds), *extra])


def clients(url: str, count: int) -> list[SeedgridClient]:
    return [SeedgridClient(url, client_id=f"client{i}-{uuid.uuid4().hex[:6]}") for i in range(count)]


def queue(user: SeedgridClient, request: JobRequest) -> str:
    """Submitted before any worker is online, so that the jobs wait in the queue together."""
    return user.submit(request, require_worker=False)


def test_sixteen_single_image_jobs_from_four_clients_run_in_two_batches(stack):
    url, factory = stack
    users = clients(url, 4)
    jobs = [
        (user, queue(user, JobRequest(prompts=[f"job {n} of {user.client_id}"], seeds=[n], steps=5, **SIMULATED)))
        for n in range(4)
        for user in users
    ]
    simulated_worker(factory, "merger", 0.1)
    finals = {job_id: user.wait(job_id, timeout=60) for user, job_id in jobs}
    assert all(s.state == JobState.SUCCEEDED and s.images_done == 1 for s in finals.values())
    hosts = {job_id for job_id, s in finals.items() if not s.merged_into}
    assert len(hosts) == 2, "the worker's batch of 8 should hold 8 queued jobs at a time"
    assert all(s.merged_into in hosts for s in finals.values() if s.merged_into)
    for user, job_id in jobs:
        [record] = user.images(job_id)
        assert record.seed == finals[job_id].request.seeds[0] and record.prompt == finals[job_id].request.prompts[0]
    for user in users:
        user.close()


def test_only_jobs_with_the_same_settings_share_a_batch(stack):
    url, factory = stack
    [user] = clients(url, 1)
    settings = [
        dict(steps=5),
        dict(steps=6),
        dict(guidance=5.0, steps=5),
        dict(scheduler="euler", steps=5),
        dict(steps=5, negative_prompt="blurry"),
    ]  # a negative prompt is per image: it may share
    jobs = [
        queue(user, JobRequest(prompts=[f"p{i}"], seeds=[i], **SIMULATED, **extra))
        for i, extra in enumerate(settings * 2)
    ]
    simulated_worker(factory, "picky", 0.1)
    finals = {job_id: user.wait(job_id, timeout=60) for job_id in jobs}
    assert all(s.state == JobState.SUCCEEDED for s in finals.values())
    merged = [s for s in finals.values() if s.merged_into]
    assert merged, "compatible jobs were queued together and none shared a batch"
    for status in merged:
        host = finals[status.merged_into].request
        assert host.batch_key() == status.request.batch_key()
    user.close()


TINY = dict(width=64, height=64, steps=4)
TINY_REQUESTS = [
    JobRequest(prompts=["a red fox"], seeds=[11], **TINY),
    JobRequest(prompts=["a blue bird", "a green frog"], seeds=[5, 12], negative_prompt="blurry", **TINY),
    JobRequest(prompts=["an old oak"], seeds=[11], negative_prompt="fog", **TINY),
]


@pytest.fixture(scope="module")
def tiny_merger(tmp_path_factory):
    """The real-pipeline test's stack: its jobs queued, then a tiny worker started on them (not waited for).

    Set up with the module's first test, so that the worker boots (6-10 s of imports) while the simulated
    tests run; the jobs are queued before the worker process starts, as in those tests."""
    with EmbeddedRedis() as server:
        factory = WorkerFactory(server.url, tmp_path_factory.mktemp("tiny-merger"), CRASH_VISIBILITY_TIMEOUT)
        [user] = clients(server.url, 1)
        try:
            jobs = [queue(user, request) for request in TINY_REQUESTS]
            yield user, jobs, factory.start(name="tiny-merger", wait=False), factory
        finally:
            user.close()
            factory.stop_all()


@pytest.fixture(scope="module", autouse=True)
def start_the_tiny_merger_first(request):
    if any("tiny_merger" in item.fixturenames and item.module is request.module for item in request.session.items):
        request.getfixturevalue("tiny_merger")


def test_merged_images_equal_those_made_alone_with_the_real_pipeline(tiny_merger, tiny_engine):
    user, jobs, worker, factory = tiny_merger
    requests = TINY_REQUESTS
    factory.wait_online(worker)
    finals = [user.wait(job_id, timeout=120) for job_id in jobs]
    assert all(s.state == JobState.SUCCEEDED for s in finals)
    assert [bool(s.merged_into) for s in finals] == [False, True, True]
    for job_id, request in zip(jobs, requests, strict=True):
        alone = {}
        tiny_engine.run(
            request,
            request.items(),
            lambda *_: None,
            lambda batch, images: alone.update(zip((i.index for i in batch), images, strict=True)),
        )
        for record in user.images(job_id):
            made = pixels(user.image_png(job_id, record.index))
            expected = pixels(_png(alone[record.index]))
            assert abs(made - expected).max() <= 2, f"job {job_id} image {record.index} differs from alone"
    # Different prompts at one seed are different images: the merged batch kept them apart.
    assert max_pixel_diff(user.image_png(jobs[0], 0), user.image_png(jobs[2], 0)) > 10


def _png(image) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_cancelling_a_merged_job_finishes_it_and_leaves_the_rest_of_its_batch(stack):
    url, factory = stack
    [user] = clients(url, 1)
    slow = dict(steps=40, **SIMULATED)
    host, victim, other = (queue(user, JobRequest(prompts=[f"j{i}"], seeds=[i], **slow)) for i in range(3))
    simulated_worker(factory, "canceller", 2.0)
    wait_until(lambda: user.status(victim).state == JobState.RUNNING, timeout=60, message="the merged batch to run")
    assert user.status(victim).merged_into == host
    user.cancel(victim)
    assert user.wait(victim, timeout=5).state == JobState.CANCELLED  # at once, not when the batch ends
    assert user.wait(host, timeout=60).state == JobState.SUCCEEDED
    assert user.wait(other, timeout=60).state == JobState.SUCCEEDED
    assert user.images(victim) == [] and len(user.images(other)) == 1
    user.close()


def test_a_worker_killed_mid_merged_batch_loses_no_job_and_stores_each_image_once(stack):
    url, factory = stack
    # A 3 s lease (renewed every 0.9 s), as in test_faults: the dead worker's jobs are taken over within seconds
    # instead of after the default 10 s lease; test_leases proves the default settings.
    factory.env["SEEDGRID_LEASE_SECONDS"] = "3"
    [user] = clients(url, 1)
    jobs = [
        queue(user, JobRequest(prompts=[f"survivor {i}"], seeds=[i, i + 100], steps=20, **SIMULATED)) for i in range(4)
    ]
    first = simulated_worker(factory, "doomed", 1.0)
    wait_until(lambda: user.status(jobs[1]).state == JobState.RUNNING, timeout=60, message="a merged batch to run")
    assert user.status(jobs[1]).merged_into == jobs[0]
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(10)
    simulated_worker(factory, "rescuer", 0.05)
    finals = [user.wait(job_id, timeout=120) for job_id in jobs]
    assert all(s.state == JobState.SUCCEEDED for s in finals), [s.error for s in finals]
    assert all([r.index for r in user.images(job_id)] == [0, 1] for job_id in jobs)
    assert all(r.worker == "rescuer" for job_id in jobs for r in user.images(job_id))
    user.close()


def test_a_worker_started_with_no_merge_runs_every_job_alone(stack):
    url, factory = stack
    [user] = clients(url, 1)
    jobs = [queue(user, JobRequest(prompts=[f"alone {i}"], seeds=[i], steps=5, **SIMULATED)) for i in range(4)]
    simulated_worker(factory, "loner", 0.05, "--no-merge")
    finals = [user.wait(job_id, timeout=60) for job_id in jobs]
    assert all(s.state == JobState.SUCCEEDED and not s.merged_into for s in finals)
    user.close()
