"""The supervisor behind `seedgrid worker --gpus`, run on the CPU: no GPU is involved in these tests.

The integration tests run `python -m worker.supervisor --slots 0,1 --device cpu` as a real process
with real tiny-model workers on a Redis of their own; only the device differs from a GPU box.
"""

import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest
import redis

from seedgrid.client.api import SeedgridClient
from seedgrid.shared.embedded_redis import EmbeddedRedis
from seedgrid.shared.job import JobState
from seedgrid.shared.request import JobRequest
from seedgrid.worker.cli import build_parser
from seedgrid.worker.supervisor import (
    NO_GPU_MESSAGE,
    Supervisor,
    cuda_visible_for_slot,
    forwarded_worker_args,
    parse_gpus,
    start_private_redis,
)
from tests.conftest import TEST_VISIBILITY_TIMEOUT, WorkerFactory
from tests.helpers import wait_until

STOP_TIMEOUT_S = 60


# -- parsing ---------------------------------------------------------------------------------


def test_parse_gpus_all_and_lists():
    assert parse_gpus("all", 4) == [0, 1, 2, 3]
    assert parse_gpus("ALL", 1) == [0]
    assert parse_gpus("0,2", 4) == [0, 2]
    assert parse_gpus(" 3 , 1", 4) == [3, 1]


@pytest.mark.parametrize(
    "spec, available, expected",
    [
        ("4", 4, "GPU 4 does not exist; this machine has 4 GPUs (0..3)"),
        ("1", 1, "GPU 1 does not exist; this machine has 1 GPU (0)"),
        ("0,x", 2, "expected 'all' or GPU numbers such as 0,2 (this machine has 0..1)"),
        ("-1", 2, "expected 'all' or GPU numbers"),
        ("", 2, "expected 'all' or GPU numbers"),
        ("0,1,0", 2, "GPU 0 is listed twice"),
    ],
)
def test_parse_gpus_errors_name_the_flag_and_the_available_range(spec, available, expected):
    with pytest.raises(ValueError) as caught:
        parse_gpus(spec, available)
    assert str(caught.value).startswith("--gpus: ")
    assert expected in str(caught.value)


def test_parse_gpus_on_a_machine_without_gpu_says_so():
    for spec in ("all", "0"):
        with pytest.raises(ValueError) as caught:
            parse_gpus(spec, 0)
        assert str(caught.value) == NO_GPU_MESSAGE
    assert "torch.cuda.device_count() is 0" in NO_GPU_MESSAGE and "run without --gpus" in NO_GPU_MESSAGE


def test_a_slot_maps_through_the_cuda_visible_devices_the_supervisor_was_given():
    assert cuda_visible_for_slot(1, {}) == "1"
    assert cuda_visible_for_slot(0, {"CUDA_VISIBLE_DEVICES": "1,3"}) == "1"
    assert cuda_visible_for_slot(1, {"CUDA_VISIBLE_DEVICES": "1, 3"}) == "3"
    assert cuda_visible_for_slot(0, {"CUDA_VISIBLE_DEVICES": "GPU-5e1f,GPU-77aa"}) == "GPU-5e1f"


def test_children_get_the_worker_options_but_not_those_set_per_child():
    parser = build_parser()
    args = parser.parse_args(
        [
            "--gpus",
            "all",
            "--model",
            "tiny",
            "--model",
            "tiny-xl",
            "--models",
            "/srv/models",
            "--keep",
            "1",
            "--name",
            "box",
            "--device",
            "cuda",
            "--redis",
            "redis://:secret@127.0.0.1:6379/0",
            "--max-batch",
            "2",
            "--vae",
            "v",
            "--turn-images",
            "0",
            "--no-merge",
            "--speedups",
            "compile",
            "--loglevel",
            "warning",
        ]
    )
    forwarded = forwarded_worker_args(args, parser)
    assert forwarded == [
        "--model",
        "tiny",
        "--model",
        "tiny-xl",
        "--models",
        "/srv/models",
        "--keep",
        "1",
        "--vae",
        "v",
        "--max-batch",
        "2",
        "--turn-images",
        "0",
        "--no-merge",
        "--speedups",
        "compile",
        "--simulated-seconds",
        "0.2",
        "--loglevel",
        "warning",
    ]
    again = parser.parse_args(forwarded)
    for dest in ("models", "models_dir", "keep", "vae", "max_batch", "turn_images", "merge", "speedups", "loglevel"):
        assert getattr(again, dest) == getattr(args, dest)
    assert again.gpus is None and again.name is None


def test_worker_gpus_on_this_gpu_less_machine_exits_2_with_a_clear_message():
    seedgrid = Path(sys.executable).with_name("seedgrid")
    command = [str(seedgrid)] if seedgrid.exists() else [sys.executable, "-m", "seedgrid.client.cli.main"]
    # An empty CUDA_VISIBLE_DEVICES hides every GPU, so this holds on a GPU box too.
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "SEEDGRID_REDIS_URL": ""}
    result = subprocess.run([*command, "worker", "--gpus", "all"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip() == f"seedgrid worker: {NO_GPU_MESSAGE}"
    assert "private" not in result.stdout  # it stopped before starting a Redis or any worker


def test_the_supervisor_imports_no_torch():
    code = "import sys, seedgrid.worker.supervisor, seedgrid.worker.cli; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def answers(url: str) -> bool:
    try:
        with redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1, retry=None) as r:
            return r.ping()
    except redis.RedisError:
        return False


def test_the_supervisors_private_redis_outlives_a_ctrl_c_meant_for_the_workers():
    with EmbeddedRedis() as plain:  # the control: a redis-server quits on SIGINT
        os.kill(plain.pid, signal.SIGINT)
        started = time.monotonic()
        wait_until(lambda: not answers(plain.url), timeout=10, message="a plain redis-server to quit on SIGINT")
        quit_after = time.monotonic() - started
    server = start_private_redis()
    try:
        assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])  # ours is unblocked again
        os.kill(server.pid, signal.SIGINT)
        time.sleep(max(0.5, 3 * quit_after))
        assert answers(server.url)
    finally:
        server.stop()
    assert not answers(server.url)


# -- restarts, with children that crash at once ----------------------------------------------


def test_a_slot_that_keeps_crashing_is_given_up_after_five_crashes(tmp_path, caplog):
    starts = tmp_path / "starts"
    crasher = "import os, sys; open(sys.argv[1], 'a').write(os.environ['CUDA_VISIBLE_DEVICES'] + '\\n'); sys.exit(3)"
    supervisor = Supervisor(
        [0, 1],
        [],
        device="cpu",
        base_name="crashy",
        restart_backoff=0.01,
        command=[sys.executable, "-c", crasher, str(starts)],
    )
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="seedgrid.supervisor"):
        assert supervisor.run() == 1
    assert time.monotonic() - started < 30  # backoff 0.01, 0.02, 0.04, 0.08 s
    assert sorted(starts.read_text().split()) == ["0"] * 5 + ["1"] * 5
    messages = [record.getMessage() for record in caplog.records]
    assert "crashy-gpu0: exited with code 3; restarting in 0.0 s" in messages
    assert any(
        m.startswith("crashy-gpu1: exited with code 3; it stopped 5 times within 60 s, not restarting it")
        for m in messages
    )
    assert messages[-1].startswith("every worker kept stopping; giving up")
    assert all(slot.process is None and slot.gave_up for slot in supervisor.slots)


# -- real workers ------------------------------------------------------------------------------


class Supervised:
    def __init__(self, redis_url: str, log_dir: Path):
        self.redis_url = redis_url
        self.log_dir = log_dir
        self.base = f"sv{uuid.uuid4().hex[:6]}"
        self.names = [f"{self.base}-gpu0", f"{self.base}-gpu1"]
        env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
        env.update(OMP_NUM_THREADS="1", SEEDGRID_VISIBILITY_TIMEOUT=TEST_VISIBILITY_TIMEOUT)
        self.log_path = log_dir / "supervisor.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "seedgrid.worker.supervisor",
                    "--slots",
                    "0,1",
                    "--device",
                    "cpu",
                    "--stop-timeout",
                    str(STOP_TIMEOUT_S),
                    "--log-dir",
                    str(log_dir),
                    "--",
                    "--model",
                    "tiny",
                    "--redis",
                    redis_url,
                    "--name",
                    self.base,
                    "--max-batch",
                    "1",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def log(self) -> str:
        text = self.log_path.read_text(errors="replace")
        for name in self.names:
            path = self.log_dir / f"{name}.log"
            if path.exists():
                text += f"\n--- {name} ---\n" + path.read_text(errors="replace")[-3000:]
        return text

    def online(self, client: SeedgridClient) -> dict:
        """Worker name -> pid, for this supervisor's workers whose process is alive."""
        return {w.name: w.pid for w in client.workers() if w.name in self.names and psutil.pid_exists(w.pid)}

    def wait_online(self, client: SeedgridClient, condition=lambda online: True, message="both workers") -> dict:
        def ready():
            assert self.process.poll() is None, f"the supervisor exited:\n{self.log()}"
            online = self.online(client)
            return online if len(online) == 2 and condition(online) else None

        try:
            return wait_until(ready, timeout=120, interval=0.2, message=message)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.log()}") from None

    def children(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S + 10)
            except subprocess.TimeoutExpired:
                self.process.kill()  # its children get SIGTERM from the kernel (PR_SET_PDEATHSIG)
                self.process.wait()


@pytest.fixture(scope="module")
def private_redis():
    with EmbeddedRedis() as server:  # no other test's worker may take these jobs
        yield server


@pytest.fixture(scope="module")
def supervised(private_redis, tmp_path_factory):
    running = Supervised(private_redis.url, tmp_path_factory.mktemp("supervisor"))
    yield running
    running.stop()


@pytest.fixture(scope="module", autouse=True)
def start_the_supervisor_first(request):
    """Its two tiny workers boot (6-10 s of imports) while the module's quick tests run, when a selected test
    uses it; the tests that use it wait for both workers online, as they did when it started with the first."""
    if any("supervised" in item.fixturenames and item.module is request.module for item in request.session.items):
        request.getfixturevalue("supervised")


def test_two_cpu_slots_start_two_workers_pinned_to_their_slot_without_a_gpu(supervised, client_on_private_redis):
    online = supervised.wait_online(client_on_private_redis)
    assert sorted(online) == supervised.names  # <base>-gpu0, <base>-gpu1
    children = {child.pid: child for child in supervised.children()}
    for slot, name in enumerate(supervised.names):
        pid = online[name]
        assert pid in children, "the worker online under this name is not the supervisor's child"
        environ = children[pid].environ()
        assert environ["CUDA_VISIBLE_DEVICES"] == str(slot)
        assert environ["OMP_NUM_THREADS"] == "1"
        cmdline = children[pid].cmdline()
        assert cmdline[-4:] == ["--name", name, "--device", "cpu"] and "--gpus" not in cmdline
        assert supervised.redis_url not in " ".join(cmdline)  # the URL and its password go by environment
    infos = {w.name: w for w in client_on_private_redis.workers()}
    assert {infos[name].device for name in supervised.names} == {"cpu"}


def test_a_child_killed_with_sigkill_is_restarted_under_the_same_name(supervised, client_on_private_redis):
    before = supervised.wait_online(client_on_private_redis)
    victim = supervised.names[1]
    os.kill(before[victim], signal.SIGKILL)
    after = supervised.wait_online(
        client_on_private_redis,
        lambda online: online[victim] != before[victim],
        message=f"{victim} to come back with a new pid",
    )
    assert after[supervised.names[0]] == before[supervised.names[0]]  # the other slot was left alone
    restarted = psutil.Process(after[victim])
    assert restarted.ppid() == supervised.process.pid
    assert restarted.environ()["CUDA_VISIBLE_DEVICES"] == "1"
    assert f"{victim}: killed by signal 9; restarting in 1.0 s" in supervised.log()


def test_sigterm_finishes_the_running_turn_hands_back_the_rest_and_loses_no_job(
    supervised, client_on_private_redis, private_redis, tmp_path
):
    client = client_on_private_redis
    supervised.wait_online(client)
    children = supervised.children()
    # --max-batch 1: each turn makes one image, then the rest of the job goes back to the queue.
    request = JobRequest(prompts=["a supervised job"], seeds=[1, 2, 3], steps=24, width=64, height=64)
    job_id = client.submit(request)
    status = wait_until(
        lambda: (s := client.status(job_id)).state == JobState.RUNNING and 2 <= s.step <= 16 and s,
        timeout=120,
        interval=0.01,
        message="the job to be in the middle of a turn",
    )
    running_turn = status.images_done
    started = time.monotonic()
    supervised.process.send_signal(signal.SIGTERM)
    assert supervised.process.wait(STOP_TIMEOUT_S + 10) == 0, supervised.log()
    assert time.monotonic() - started < STOP_TIMEOUT_S, "the workers had to be killed"
    assert "killing it" not in supervised.log()
    assert not [child for child in children if child.is_running()]

    after = client.status(job_id)
    assert after.state in (JobState.QUEUED, JobState.SUCCEEDED), after
    assert after.images_done >= running_turn + 1  # the turn that was running when SIGTERM came was finished
    if after.state == JobState.QUEUED:  # handed back: a fresh worker on the same Redis finishes it
        factory = WorkerFactory(private_redis.url, tmp_path)
        try:
            factory.start(name="after-supervisor")
            final = client.wait(job_id, timeout=120)
        finally:
            factory.stop_all()
    else:
        final = after
    assert final.state == JobState.SUCCEEDED, final.error
    assert [record.index for record in client.images(job_id)] == [0, 1, 2]


@pytest.fixture
def client_on_private_redis(private_redis):
    with SeedgridClient(private_redis.url, client_id=f"test-{uuid.uuid4().hex[:8]}") as c:
        yield c
