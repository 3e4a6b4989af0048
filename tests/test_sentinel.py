"""Redis failover with Sentinel: a master, a replica and three sentinels; kill -9 of the master mid-job.

All five run from the same redis-server binary as the other tests' Redis (a sentinel is
`redis-server sentinel.conf --sentinel`); skipped, saying why, where there is none.
"""

import signal
import socket
import subprocess
import time

import pytest
import redis

from seedgrid.client.api import SeedgridClient
from seedgrid.shared.celery_config import make_celery
from seedgrid.shared.embedded_redis import RedisUnavailable, die_with_parent_preexec, find_redis_server
from seedgrid.shared.job import JobState
from seedgrid.shared.redis_conn import url_problem
from seedgrid.shared.redis_sentinel import parse_sentinel_url
from seedgrid.shared.request import JobRequest
from tests.conftest import WorkerFactory

PASSWORD = "sentinel-test-password"
MASTER = "seedgrid"
HOST = "127.0.0.1"
IMAGES = 10
SECONDS_PER_IMAGE = 0.4
BATCH = 2  # a turn per batch: the job goes back through the queue four times during and after the failover


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class SentinelCluster:
    """A master, a replica and three sentinels on free loopback ports, all with PASSWORD."""

    def __init__(self, binary: str, folder):
        self.binary, self.folder = binary, folder
        self.processes: dict[str, subprocess.Popen] = {}
        self.ports: dict[str, int] = {}

    def _start(self, name: str, lines: list[str], sentinel: bool = False) -> None:
        port = self.ports[name] = free_port()
        run_dir = self.folder / name
        run_dir.mkdir()
        conf = [f"port {port}", f"bind {HOST}", f'dir "{run_dir}"', 'save ""', f"requirepass {PASSWORD}", *lines]
        (run_dir / "redis.conf").write_text("\n".join(conf) + "\n")  # a sentinel rewrites its file
        self._launch(name, sentinel)

    def _launch(self, name: str, sentinel: bool = False) -> None:
        run_dir = self.folder / name
        with open(run_dir / "log", "ab") as log:
            self.processes[name] = subprocess.Popen(
                [self.binary, str(run_dir / "redis.conf"), *(["--sentinel"] if sentinel else [])],
                cwd=run_dir,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent_preexec(),
            )

    def client(self, name: str) -> redis.Redis:
        return redis.Redis(HOST, self.ports[name], password=PASSWORD, socket_timeout=2, socket_connect_timeout=2)

    def wait(self, condition, what: str, timeout: float = 20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if value := condition():
                    return value
            except redis.RedisError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}\n{self.logs()}")

    def start(self) -> "SentinelCluster":
        self._start("master", [f"masterauth {PASSWORD}", "appendonly no"])
        self.wait(lambda: self.client("master").ping(), "the master")
        self._start("replica", [f"masterauth {PASSWORD}", "appendonly no", f"replicaof {HOST} {self.ports['master']}"])
        self.wait(lambda: self.client("replica").info("replication")["master_link_status"] == "up", "replication")
        for n in range(3):
            self._start(
                f"sentinel{n}",
                [
                    f"sentinel monitor {MASTER} {HOST} {self.ports['master']} 2",
                    f"sentinel auth-pass {MASTER} {PASSWORD}",
                    f"sentinel down-after-milliseconds {MASTER} 1000",
                    f"sentinel failover-timeout {MASTER} 5000",
                ],
                sentinel=True,
            )
        for n in range(3):  # each knows the replica and the two other sentinels: ready to fail over
            state = lambda n=n: self.client(f"sentinel{n}").sentinel_master(MASTER)  # noqa: E731
            self.wait(lambda s=state: s()["num-slaves"] == 1 and s()["num-other-sentinels"] == 2, f"sentinel{n}")
        return self

    @property
    def url(self) -> str:
        hosts = ",".join(f"{HOST}:{self.ports[f'sentinel{n}']}" for n in range(3))
        return f"sentinel://:{PASSWORD}@{hosts}/0?master={MASTER}"

    def restart_old_master(self) -> None:
        """The killed master back, empty, on its port: the sentinels make it a replica of the new one."""
        self._launch("master")
        self.wait(lambda: self.client("master").info("replication").get("master_link_status") == "up", "resync")
        replicas = lambda: self.client("sentinel0").sentinel_slaves(MASTER)  # noqa: E731
        self.wait(
            lambda: any(r["port"] == self.ports["master"] and r["is_slave"] and not r["is_sdown"] for r in replicas()),
            "the sentinels to see the old master as a replica",
        )

    def master_port(self) -> int:
        return int(self.client("sentinel0").sentinel_get_master_addr_by_name(MASTER)[1])

    def logs(self) -> str:
        return "\n".join(
            f"--- {name}:\n" + "".join((self.folder / name / "log").read_text(errors="replace").splitlines(True)[-15:])
            for name in self.processes
        )

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(5)


@pytest.fixture
def cluster(tmp_path):
    try:
        binary = find_redis_server()
    except RedisUnavailable as exc:
        pytest.skip(f"no redis-server to run a master, a replica and sentinels: {exc}")
    (tmp_path / "redis").mkdir()
    cluster = SentinelCluster(binary, tmp_path / "redis")
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.mark.processes
def test_a_job_finishes_across_a_sentinel_failover_of_a_killed_master(cluster, tmp_path):
    factory = WorkerFactory(cluster.url, tmp_path, visibility_timeout="7200")  # the default: no redelivery
    try:
        worker = factory.start(
            name="through-failover",
            model="simulated",
            extra_args=["--simulated-seconds", str(SECONDS_PER_IMAGE), "--max-batch", str(BATCH)],
        )
        request = JobRequest(
            model="simulated", prompts=["failover"], seeds=list(range(IMAGES)), steps=4, width=64, height=64
        )
        with SeedgridClient(cluster.url) as client:
            job_id = client.submit(request)
            images_at_kill = cluster.wait(lambda: len(client.images(job_id)), "the first image", timeout=60)
            old_master = cluster.ports["master"]
            cluster.processes["master"].send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            cluster.wait(lambda: cluster.master_port() == cluster.ports["replica"], "the promotion", timeout=30)
            promoted = time.monotonic() - killed_at
            try:
                status = client.wait(job_id, timeout=60)
            except Exception as exc:
                raise AssertionError(f"{exc}\n{open(worker.log_path).read()[-4000:]}\n{cluster.logs()}") from exc
            seconds = time.monotonic() - killed_at
            print(
                f"\nkill -9 of the master to the job's finish: {seconds:.1f} s (replica promoted after "
                f"{promoted:.1f} s; {IMAGES - images_at_kill} of {IMAGES} images left, {SECONDS_PER_IMAGE} s each)"
            )
            assert status.state == JobState.SUCCEEDED, f"{status}\n{cluster.logs()}"
            assert status.images_done == IMAGES and old_master != cluster.master_port()
            records = client.images(job_id)
            assert [r.index for r in records] == list(range(IMAGES))  # each image stored once
            assert all(client.image_png(job_id, r.index).startswith(b"\x89PNG") for r in records)

            # A planned failover back: the master is demoted alive, so connections to it get READONLY
            # (celery#7946) and must move to the new master by themselves.
            cluster.restart_old_master()
            after = client.submit(request)
            cluster.wait(lambda: len(client.images(after)), "the first image after the restart", timeout=60)
            switched_at = time.monotonic()
            cluster.client("sentinel0").execute_command("SENTINEL", "FAILOVER", MASTER)
            cluster.wait(lambda: cluster.master_port() == old_master, "the planned failover", timeout=30)
            final = client.wait(after, timeout=60)
            print(f"SENTINEL FAILOVER to the job's finish: {time.monotonic() - switched_at:.1f} s")
            assert final.state == JobState.SUCCEEDED, f"{final}\n{cluster.logs()}"
            assert [r.index for r in client.images(after)] == list(range(IMAGES))
        assert worker.alive(), "the worker followed the failover instead of dying"
    finally:
        factory.stop_all()


def test_sentinel_urls_are_parsed_and_refused_with_the_reason():
    parsed = parse_sentinel_url("sentinel://:p%40ss@10.0.0.1:26380,[::1]/2?master=main&sentinel_password=s")
    assert parsed.hosts == (("10.0.0.1", 26380), ("::1", 26379)) and parsed.db == 2 and parsed.master == "main"
    assert parsed.password == "p@ss" and parsed.sentinel_credentials() == {"password": "s"}
    assert url_problem("sentinel://127.0.0.1:26379/0?master=m") is None  # loopback: no password needed
    for url, reason in [
        ("sentinel://:pw@10.0.0.1:26379/0", "no master name"),
        ("sentinel://:pw@/0?master=m", "no sentinel hosts"),
        ("sentinel://10.0.0.1:26379/0?master=m", "10.0.0.1 has no password"),
        ("sentinel://:pw@10.0.0.1:x/0?master=m", "port 'x' of 10.0.0.1"),
        ("sentinel://:pw@10.0.0.1/zero?master=m", "database 'zero'"),
        ("sentinel://:pw@10.0.0.1/0?master_name=m", "unknown option 'master_name'"),
    ]:
        assert reason in (url_problem(url) or ""), url


def test_celery_gets_kombus_sentinel_form_with_the_master_name():
    app = make_celery("sentinel://:p%40ss@10.0.0.1:26379,10.0.0.2:26380/3?master=main")
    expected = "sentinel://:p%40ss@10.0.0.1:26379/3;sentinel://:p%40ss@10.0.0.2:26380/3"
    assert app.conf.broker_url == app.conf.result_backend == expected
    for options in (app.conf.broker_transport_options, app.conf.result_backend_transport_options):
        assert options["master_name"] == "main" and options["sentinel_kwargs"]["password"] == "p@ss"
        assert options["visibility_timeout"] > 0  # the usual options stay
