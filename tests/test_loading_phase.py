"""A job whose model is not loaded yet is started by the worker that took it, and its record says the model is
loading until the first step: a real Redis and a real worker process of two simulated models (no torch) whose
load takes seconds; then how the CLI and the app show such a job."""

import io
import signal
import time

import pytest

from seedgrid.client.api import SeedgridClient
from seedgrid.client.cli.progress import ProgressBar
from seedgrid.client.gui.backend import Throughput, estimate_queue
from seedgrid.shared.embedded_redis import EmbeddedRedis
from seedgrid.shared.job import JobState, JobStatus
from seedgrid.shared.request import JobRequest
from tests.conftest import WorkerFactory

A, B = "simulated-a", "simulated-b"
LOAD_SECONDS = 3


def request(model: str) -> JobRequest:
    return JobRequest(model=model, prompts=["a loading dock"], seeds=[0, 1], steps=2, width=64, height=64)


def follow(client: SeedgridClient, job_id: str, timeout: float = 60.0) -> list[tuple[float, JobStatus]]:
    """Every record read until the job finished (every 50 ms), with when it was read."""
    seen: list[tuple[float, JobStatus]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen.append((time.monotonic(), client.status(job_id)))
        if seen[-1][1].state.finished:
            return seen
        time.sleep(0.05)
    raise TimeoutError(f"job {job_id} did not finish; last {seen[-1][1]!r}")


@pytest.mark.processes
def test_a_job_waiting_for_its_model_is_started_and_says_the_model_is_loading(tmp_path):
    with EmbeddedRedis() as redis_server:
        factory = WorkerFactory(redis_server.url, tmp_path)
        try:
            # 0.5 s an image: a batch of two takes 1 s, its first step a visible 0.5 s before the second
            args = ["--model", B, "--keep", "1", "--simulated-seconds", "0.5"]
            worker = factory.start(
                name="two-models", model=A, extra_args=[*args, "--simulated-load-seconds", str(LOAD_SECONDS)]
            )
            with SeedgridClient(redis_server.url) as client:
                seen = follow(client, client.submit(request(B)))  # B is not loaded: A loaded at start
                statuses = [status for _, status in seen]
                last = statuses[-1]
                assert last.state == JobState.SUCCEEDED, last.error
                assert last.phase == "" and last.activity == "succeeded"
                assert LOAD_SECONDS - 0.5 <= last.load_seconds < LOAD_SECONDS + 10  # not generating time
                loading = [(at, s) for at, s in seen if s.phase]
                assert loading, [(s.state.value, s.phase) for s in statuses]
                # Started by its worker for the whole load (seconds), never queued again once taken
                assert {(s.state, s.phase, s.worker) for _, s in loading} == {
                    (JobState.STARTED, f"loading model {B}", worker.name)
                }
                assert loading[-1][0] - loading[0][0] >= LOAD_SECONDS - 1
                taken = next(i for i, s in enumerate(statuses) if s.state != JobState.QUEUED)
                assert all(s.state != JobState.QUEUED for s in statuses[taken:])
                assert statuses[taken].phase == f"loading model {B}"  # the start comes before the load
                running = [s for s in statuses if s.state == JobState.RUNNING]
                assert running and not any(s.phase for s in running)  # the first step cleared it

                # B is loaded now: its next job has no phase at any point
                seen = follow(client, client.submit(request(B)))
                assert seen[-1][1].state == JobState.SUCCEEDED and not any(s.phase for _, s in seen)
                assert seen[-1][1].load_seconds == 0
        finally:
            factory.stop_all()


@pytest.mark.processes
def test_a_worker_killed_while_loading_the_model_loses_no_job(tmp_path):
    """The worker holds the job's lease during the load: once it lapses a live worker takes the job over (the
    visibility timeout, far longer, plays no part)."""
    with EmbeddedRedis() as redis_server:
        factory = WorkerFactory(
            redis_server.url, tmp_path, visibility_timeout="60", env={"SEEDGRID_LEASE_SECONDS": "2"}
        )
        try:
            args = ["--model", B, "--keep", "1", "--simulated-seconds", "0.01", "--simulated-load-seconds", "4"]
            loader = factory.start(name="loader", model=A, extra_args=args)
            with SeedgridClient(redis_server.url) as client:
                job_id = client.submit(request(B))
                deadline = time.monotonic() + 30
                while (status := client.status(job_id)).phase != f"loading model {B}":
                    assert time.monotonic() < deadline and not status.state.finished, status
                    time.sleep(0.05)
                # Its heartbeat (every 2 s) says it is loading B for the job, so nothing is handed to it meanwhile
                while not (info := next(w for w in client.workers() if w.name == "loader")).loading:
                    assert time.monotonic() < deadline, info
                    time.sleep(0.05)
                assert (info.state(), info.busy, info.current_job) == (f"loading {B}", True, job_id)
                assert client.status(job_id).phase == f"loading model {B}"  # still loading: killed mid-load
                loader.process.send_signal(signal.SIGKILL)  # in the middle of its 4 s load
                loader.process.wait(10)
                # Started after the kill, with B loaded: the loader could not have handed the job to it.
                factory.start(name="rescuer", model=B, extra_args=["--simulated-seconds", "0.01"])
                final = client.wait(job_id, timeout=60)
                assert final.state == JobState.SUCCEEDED, final.error
                assert (final.worker, final.lost_worker, final.attempts, final.phase) == ("rescuer", "loader", 2, "")
                assert [r.index for r in client.images(job_id)] == [0, 1]
        finally:
            factory.stop_all()


def loading_status() -> JobStatus:
    return JobStatus(
        job_id="j" * 32, state=JobState.STARTED, request=request(B), worker="w", images_total=2, steps=2,
        phase=f"loading model {B}", submitted_at=100.0, started_at=101.0,
    )  # fmt: skip


def test_the_cli_progress_line_says_the_model_is_loading_then_the_steps():
    stream = io.StringIO()  # not a terminal: a line per state, phase or fifth
    bar = ProgressBar("job", stream=stream)
    status = loading_status()
    bar.update(status)
    bar.update(status.model_copy(update={"state": JobState.RUNNING, "phase": "", "step": 1}))
    lines = stream.getvalue().splitlines()
    assert lines[0].endswith(f"0% loading model {B}") and lines[1].endswith("step 1/2, images 0/2")
    # a phase left by a worker that stopped loading is not shown once the job is queued again
    assert status.model_copy(update={"state": JobState.QUEUED}).activity == "queued"


def test_the_app_shows_the_loading_model_and_counts_the_job_as_running(qapp):
    from seedgrid.client.gui.grid_model import GridModel
    from seedgrid.client.gui.jobs_model import JobsModel

    status = loading_status()
    jobs = JobsModel()
    jobs.upsert(status)
    assert jobs.data(jobs.index(0, JobsModel.columns.index("state"))) == f"loading model {B}"
    grid = GridModel(status.job_id, request(B))
    grid.set_status(status)
    assert grid.title.endswith(f"· loading model {B}")
    [estimate] = estimate_queue([status], [], Throughput(), 110.0).values()
    assert estimate.position == 0  # taken by a worker: not in the queue


def test_a_plot_says_its_model_is_loading_and_speeds_leave_the_load_out(qapp):
    from seedgrid.client.gui.plot_grid import PlotGridModel
    from seedgrid.client.plots import SubmittedPlot
    from seedgrid.shared.plot import make_plot

    status = loading_status()
    plot = make_plot(request(B).model_copy(update={"seeds": [0]}), x="seed=0,1")  # one job
    grid = PlotGridModel("g" * 32, SubmittedPlot("p" * 32, plot, [status.job_id]))
    grid.set_job_status(status)
    assert f"· loading model {B}" in grid.title
    grid.set_job_status(status.model_copy(update={"state": JobState.RUNNING, "phase": ""}))
    assert "· running" in grid.title

    # 2 images in 14 s, 10 of them loading the model: 0.5 images/s of generating, not 1/7
    done = status.model_copy(update={"state": JobState.SUCCEEDED, "phase": "", "finished_at": 115.0,
                                     "load_seconds": 10.0})  # fmt: skip
    throughput = Throughput()
    throughput.add(done)
    assert throughput.per_worker(B, [], 120.0) == pytest.approx(0.5)


def test_a_long_model_load_is_not_taken_for_a_stuck_worker(monkeypatch):
    """The stuck watchdog restarts a worker busy without progress for SEEDGRID_STUCK_SECONDS; a model load is
    busy without steps for as long as it takes, and must not count."""
    from seedgrid.shared.jobstore import JobStore
    from seedgrid.shared.redis_conn import connect
    from seedgrid.worker.runtime import WorkerRuntime
    from seedgrid.worker.simulated import SimulatedEngine

    monkeypatch.setenv("SEEDGRID_STUCK_SECONDS", "1")
    with EmbeddedRedis() as server:
        runtime = WorkerRuntime(engine=SimulatedEngine(0.0, 4), store=JobStore(connect(server.url)), name="w")
        runtime.busy, runtime.current_job, runtime.last_progress = True, "j" * 32, time.monotonic() - 5
        assert runtime.stuck()
        runtime.loading = B
        assert not runtime.stuck()
        assert runtime.info().state() == f"loading {B}"


def test_a_model_that_fails_to_load_fails_its_job_in_one_line_and_the_worker_goes_on():
    """Before: an error of the load other than a refusal (out of memory, a broken file) left the job started,
    'loading model b', off the queue, for ever (or failed it later for a worker death that never happened)."""
    import uuid

    from seedgrid.shared.jobstore import JobStore
    from seedgrid.shared.redis_conn import connect
    from seedgrid.shared.workers import ModelOffer
    from seedgrid.worker.job_runner import run_job
    from seedgrid.worker.model_shelf import ModelShelf, ModelSource, ShelfRoom
    from seedgrid.worker.runtime import WorkerRuntime
    from tests.test_model_shelf import NamedEngine

    def load(source):
        if source.name == "b":
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return NamedEngine(source.name)

    with EmbeddedRedis() as server:
        store = JobStore(connect(server.url))
        sources = [ModelSource(n, n, ModelOffer(name=n, schedulers=["euler"], loaded=False), 100) for n in "ab"]
        shelf = ModelShelf(sources, load, "cpu", 4, ShelfRoom(keep=1), None)
        shelf.engine_for("a")
        runtime = WorkerRuntime(engine=shelf, store=store, name="w1", merge=False)
        job = JobRequest(model="b", prompts=["x"], seeds=[1], scheduler="euler", steps=2, width=64, height=64)
        job_id = uuid.uuid4().hex
        store.create(job_id, job, "client")
        result = run_job(runtime, job_id, job.model_dump(mode="json"))
        status = store.status(job_id)
        assert result["state"] == status.state == JobState.FAILED and status.phase == ""
        assert status.error.startswith("the worker could not load model b (error id ")
        assert "\n" not in status.error and not runtime.busy and runtime.loading == ""
        assert runtime.held.snapshot() == []


def test_running_jobs_speed_leaves_their_model_load_out():
    """While no job has finished, the speed comes from running ones: 5 images in 10 s after a 60 s load."""
    running = loading_status().model_copy(
        update={"state": JobState.RUNNING, "phase": "", "images_total": 10, "images_done": 5, "steps": 2,
                "started_at": 100.0, "load_seconds": 60.0}
    )  # fmt: skip
    assert Throughput().per_worker(B, [running], 170.0) == pytest.approx(0.5)
