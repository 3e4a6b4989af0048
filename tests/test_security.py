"""Refusing unsafe Redis URLs, TLS options for rediss://, and short errors without tracebacks."""

import subprocess
import sys

import pytest

from seedgrid.shared.redis_conn import UnsafeRedisURL, celery_tls_options, check_redis_url, tls_options


@pytest.mark.parametrize(
    "url",
    [
        "redis://:secret@10.0.0.5:6379/0",
        "redis://alice:secret@redis.example:6379/0",
        "redis://127.0.0.1:6379/0",
        "redis://localhost:6379",
        "redis://[::1]:6379/0",
        "rediss://:secret@redis.example:6380/0",
    ],
)
def test_safe_urls_pass(url):
    check_redis_url(url)


@pytest.mark.parametrize(
    "url,problem",
    [
        ("redis://10.0.0.5:6379/0", "10.0.0.5 has no password"),
        ("redis://redis.example:6379/0", "redis.example has no password"),
        ("redis://alice@redis.example:6379/0", "has no password"),
        ("http://:secret@redis.example/0", "scheme 'http'"),
        ("redis://:secret@/0", "no host"),
    ],
)
def test_unsafe_urls_are_refused_with_the_reason(url, problem):
    with pytest.raises(UnsafeRedisURL, match=problem):
        check_redis_url(url)


def test_rediss_verifies_the_server_against_the_ca_file(monkeypatch, tmp_path):
    ca = tmp_path / "ca.pem"
    monkeypatch.setenv("SEEDGRID_REDIS_CA", str(ca))
    assert tls_options("rediss://:s@h:6380/0") == {"ssl_cert_reqs": "required", "ssl_ca_certs": str(ca)}
    assert celery_tls_options("rediss://:s@h:6380/0")["ssl_ca_certs"] == str(ca)
    assert tls_options("redis://:s@h:6379/0") == {} and celery_tls_options("redis://:s@h/0") is None


def test_worker_and_client_refuse_a_passwordless_remote_redis():
    for args in (
        ["workers", "--redis", "redis://10.1.2.3:6379/0"],
        ["generate", "a prompt", "--redis", "redis://10.1.2.3:6379/0"],
        ["worker", "--redis", "redis://10.1.2.3:6379/0"],
    ):
        result = subprocess.run(
            [sys.executable, "-m", "seedgrid.client.cli.main", *args], capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 2, (args, result.stderr)
        assert "10.1.2.3 has no password" in result.stderr and "Traceback" not in result.stderr
