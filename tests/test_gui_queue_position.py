"""A queued job's place and estimates count every client's jobs ahead of it, in the order the workers take
them: by priority, then by when queued. A real Redis; no worker processes (a heartbeat only, or none)."""

import json
import uuid

from seedgrid.client.api import SeedgridClient
from seedgrid.client.gui import backend as backend_module
from seedgrid.client.gui.backend import Backend, QueueEstimate, Throughput, estimate_queue
from seedgrid.client.queue_ahead import QueuedJob
from seedgrid.shared import names
from seedgrid.shared.job import JobState, JobStatus
from seedgrid.shared.jobstore import JobStore
from seedgrid.shared.mergepool import MergePool
from seedgrid.shared.request import JobRequest
from tests.gui_stand_in import registered

MODEL = "fake-queue-model"
NOW = 10_000.0


def request(model: str = MODEL, seeds: int = 2) -> JobRequest:
    return JobRequest(model=model, prompts=["a queue"], seeds=list(range(seeds)), width=64, height=64, steps=4)


def followed(job_id: str, priority: int, submitted_at: float, **fields) -> JobStatus:
    return JobStatus(
        job_id=job_id, state=JobState.QUEUED, request=request(), images_total=2, steps=4, priority=priority,
        submitted_at=submitted_at, **fields,
    )  # fmt: skip


def other(job_id: str, priority: int, queued_at: float, images: float, state=JobState.QUEUED) -> QueuedJob:
    return QueuedJob(job_id, "someone-else", state, priority, queued_at, images)


def half_an_image_per_second() -> Throughput:
    throughput = Throughput()
    done = followed("done", 3, NOW - 200, started_at=NOW - 100, finished_at=NOW - 96)
    throughput.add(done.model_copy(update={"state": JobState.SUCCEEDED}))  # 2 images in 4 s
    return throughput


def test_other_clients_jobs_ahead_count_for_the_place_and_the_times():
    mine, mine_high = followed("mine", 3, NOW - 5), followed("mine-high", 0, NOW - 1)
    queue = [
        other("a", 3, NOW - 30, 2),
        other("b", 3, NOW - 20, 4),
        other("mine", 3, NOW - 5, 2),  # the followed record wins over its entry in the read
        other("behind", 3, NOW - 2, 2),
        other("running", 3, 0.0, 1, JobState.RUNNING),  # 1 image left, before any queued one
    ]
    estimates = estimate_queue([mine, mine_high], [], half_an_image_per_second(), NOW, {MODEL: queue})
    # high first (after the running image), then a and b (6 images), then mine; 2 s an image
    assert estimates == {
        "mine-high": QueueEstimate(1, NOW + 2, NOW + 6),
        "mine": QueueEstimate(4, NOW + 18, NOW + 22),
    }


def test_a_large_jobs_next_turn_waits_behind_the_jobs_queued_before_it_went_back():
    # Submitted first, but its next turn was queued after the other client's job: half its images are done.
    turn = followed("next-turn", 3, NOW - 60, images_done=1)
    queue = [other("next-turn", 3, NOW - 3, 1), other("earlier", 3, NOW - 10, 2)]
    estimates = estimate_queue([turn], [], half_an_image_per_second(), NOW, {MODEL: queue})
    assert estimates == {"next-turn": QueueEstimate(2, NOW + 4, NOW + 6)}


# Through Redis.


def worker_order(client: SeedgridClient, model: str) -> list[str]:
    """The job ids in the order kombu's Redis transport hands them to workers: its priority lists in turn,
    each oldest first (sent with LPUSH, taken with BRPOP)."""
    order = []
    for key in names.queue_keys(names.queue_for_model(model)):
        order += [json.loads(m)["headers"]["id"] for m in reversed(client.redis.lrange(key, 0, -1))]
    return order


def test_the_app_places_its_job_behind_every_clients_jobs_as_the_workers_take_them(server, qtbot, monkeypatch):
    monkeypatch.setattr(backend_module, "QUEUE_EVERY_S", 0.0)  # every poll reads the whole queue
    model, me = f"unserved-{uuid.uuid4().hex[:8]}", f"app-{uuid.uuid4().hex[:8]}"
    with (
        SeedgridClient(server.url, f"cli-{uuid.uuid4().hex[:8]}") as cli,
        SeedgridClient(server.url, me) as also_me,
        registered(server.url, model, ("dpm++_2m",)),  # a heartbeat for the app's check; nothing takes the jobs
    ):
        for _ in range(5):
            cli.submit(request(model), require_worker=False)
        app = Backend(server.url, me, poll_ms=60_000)
        sent: list[dict[str, QueueEstimate]] = []
        app.queue_estimated.connect(sent.append)
        app.start()
        try:
            normal = also_me.submit(request(model))  # as the app's submitter sends it, then the app follows it
            app.follow_submitted([normal])
            assert sent[-1][normal].position == 6
            assert worker_order(cli, model).index(normal) == 5

            # A high-priority job of this client (as the CLI sends one), then one of each of the other client.
            high = also_me.submit(request(model), require_worker=False, priority="high")
            cli.submit(request(model), require_worker=False, priority="high")
            cli.submit(request(model), require_worker=False)
            app.follow(high, [])
            app.poll()
            order = worker_order(cli, model)
            assert (sent[-1][high].position, sent[-1][normal].position) == (1, 8)
            assert (order.index(high), order.index(normal)) == (0, 7)
        finally:
            app.stop()


def test_the_queue_read_lists_queued_jobs_in_order_and_running_ones_with_their_images_left(server):
    model = f"read-{uuid.uuid4().hex[:8]}"
    with SeedgridClient(server.url, f"cli-{uuid.uuid4().hex[:8]}") as cli:
        low, normal, cancelled, running = (
            cli.submit(request(model, seeds=4), require_worker=False, priority=p)
            for p in ("low", "normal", "normal", "normal")
        )
        cli.cancel(cancelled)
        store = JobStore(cli.redis)
        assert MergePool(cli.redis, store.ttl).start_own(running, "a-worker", request(model, seeds=4))
        store.progress([(running, 1, 2)], step=2, steps=4, leases=[running], worker="a-worker")  # 2 of 4 images
        read = cli.queues([model, "no-such-model"])
    assert read["no-such-model"] == []
    assert [(j.job_id, j.state, j.images_left) for j in read[model]] == [
        (normal, JobState.QUEUED, 4),
        (low, JobState.QUEUED, 4),
        (running, JobState.RUNNING, 2),
    ]
