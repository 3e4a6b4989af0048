"""SEEDGRID_* variables: read once into one settings object, bad values refused by name."""

import os
import subprocess
import sys

import pytest

from seedgrid.shared.celery_config import make_celery, result_ttl, visibility_timeout
from seedgrid.shared.settings import SettingsError, get_settings


def test_valid_values_reach_celery_and_the_job_store(monkeypatch):
    monkeypatch.setenv("SEEDGRID_VISIBILITY_TIMEOUT", "7200")
    monkeypatch.setenv("SEEDGRID_RESULT_TTL", "600")
    monkeypatch.setenv("SEEDGRID_MERGE", "0")
    get_settings.cache_clear()
    assert (visibility_timeout(), result_ttl(), get_settings().merge) == (7200, 600, False)
    app = make_celery("redis://127.0.0.1:1/0")
    assert app.conf.broker_transport_options["visibility_timeout"] == 7200
    assert app.conf.result_expires == 600


def test_settings_are_read_once_per_process(monkeypatch):
    monkeypatch.setenv("SEEDGRID_RESULT_TTL", "600")
    get_settings.cache_clear()
    assert result_ttl() == 600
    monkeypatch.setenv("SEEDGRID_RESULT_TTL", "900")
    assert result_ttl() == 600


@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [
        ("SEEDGRID_VISIBILITY_TIMEOUT", "7200s", "a whole number of seconds"),
        ("SEEDGRID_RESULT_TTL", "-5", "at least 1"),
        ("SEEDGRID_DEVICE", "gpu", "cuda or cpu"),
        ("SEEDGRID_MAX_BATCH", "many", "from 1 to 256"),
        ("SEEDGRID_MERGE", "perhaps", "1 or 0"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable_and_the_allowed_form(monkeypatch, name, value, allowed):
    monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    with pytest.raises(SettingsError) as refused:
        get_settings()
    assert str(refused.value).startswith(f"{name}={value!r}: expected ") and allowed in str(refused.value)


@pytest.mark.parametrize("command", [["jobs"], ["worker"], ["generate", "a prompt"]])
def test_every_command_refuses_a_bad_variable_in_one_line(command):
    env = {**os.environ, "SEEDGRID_VISIBILITY_TIMEOUT": "7200s", "SEEDGRID_REDIS_URL": "redis://127.0.0.1:1/0"}
    result = subprocess.run(
        [sys.executable, "-m", "seedgrid.client.cli.main", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "seedgrid: SEEDGRID_VISIBILITY_TIMEOUT='7200s': expected a whole number of seconds, at least 1 "
        "(how long a job unacknowledged by a lost worker waits before Celery delivers it again)"
    ]
