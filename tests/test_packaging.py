"""The deployment files and the README's commands: what a new user and CI run first."""

import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SUBCOMMANDS = ["demo", "generate", "worker", "workers", "jobs", "cancel", "redis"]


@pytest.fixture(scope="module")
def compose() -> dict:
    yaml = pytest.importorskip("yaml")  # PyYAML comes with the worker extra's packages
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def readme_commands() -> list[str]:
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", (ROOT / "README.md").read_text(), re.S | re.M)
    return [block.strip() for block in blocks]


def interpolate_defaults(text: str) -> str:
    """Compose's `${VAR:-default}` with VAR unset."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", text)


def named_volume_at(service: dict, target: str, compose: dict) -> str:
    sources = [v.split(":")[0] for v in service.get("volumes", []) if v.split(":")[1] == target]
    assert sources, f"no volume mounted at {target}"
    assert sources[0] in (compose.get("volumes") or {}), f"{sources[0]} is not a named volume"
    return sources[0]


def test_redis_requires_a_password_persists_and_reports_health(compose):
    redis = compose["services"]["redis"]
    assert redis["image"] == "redis:7"
    command = redis["command"]
    assert command[command.index("--requirepass") + 1] == "${SEEDGRID_REDIS_PASSWORD:?set a password}"
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--appendfsync") + 1] == "everysec"
    assert named_volume_at(redis, "/data", compose)
    test = " ".join(redis["healthcheck"]["test"])
    assert "redis-cli" in test and "PONG" in test
    assert redis["environment"]["REDISCLI_AUTH"] == "${SEEDGRID_REDIS_PASSWORD}"
    assert "profiles" not in redis


def test_worker_gets_one_gpu_the_model_cache_and_a_healthy_redis(compose):
    worker = compose["services"]["worker"]
    assert worker["build"] == "."
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert len(devices[0].get("device_ids", [])) == 1 or devices[0].get("count") == 1
    env = worker["environment"]
    assert env["SEEDGRID_REDIS_URL"] == "redis://:${SEEDGRID_REDIS_PASSWORD}@redis:6379/0"
    assert env["CUDA_VISIBLE_DEVICES"] == "0"
    assert named_volume_at(worker, env["HF_HOME"], compose)
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"
    assert worker["restart"] == "unless-stopped"
    assert "profiles" not in worker


def test_worker_command_is_a_valid_seedgrid_worker_command_line(compose):
    from seedgrid.worker.cli import build_parser

    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r'^ENTRYPOINT \["seedgrid"\]$', dockerfile, re.M)
    argv = shlex.split(interpolate_defaults(compose["services"]["worker"]["command"]))
    assert argv[0] == "worker"
    args = build_parser().parse_args(argv[1:])
    assert args.model == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert args.device == "cuda"


def test_dockerfile_installs_every_package_of_the_distribution():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM .*(pytorch|BASE_IMAGE)", dockerfile, re.M | re.I)
    assert re.search(r"^ARG BASE_IMAGE=pytorch/pytorch:\S*cuda\S*runtime$", dockerfile, re.M)
    assert 'pip install ".[worker]"' in dockerfile
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    copied = set(re.findall(r"^COPY (?:\S+ )*?(\w+) \./\1$", dockerfile, re.M))
    packages = set(pyproject["tool"]["setuptools"]["package-dir"].values())
    assert packages <= copied, f"Dockerfile does not copy {packages - copied}"
    assert re.search(r"^COPY pyproject\.toml README\.md \./$", dockerfile, re.M)


def test_the_distribution_installs_one_top_level_package_seedgrid(tmp_path):
    source = tmp_path / "source"  # a copy, so that the build leaves nothing in the checkout
    for name in ("shared", "worker", "client"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path)]
    subprocess.run([*build, str(source)], check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("seedgrid-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top_level == {"seedgrid"}
    for part in ("shared", "worker", "client"):
        assert f"seedgrid/{part}/__init__.py" in names
    assert "seedgrid/client/gui/main_window.py" in names and "seedgrid/worker/models/tiny.py" in names


def test_flower_is_optional_and_uses_the_same_broker(compose):
    flower = compose["services"]["flower"]
    assert flower["profiles"] == ["monitoring"]
    command = flower["command"]
    assert command[0] == "celery" and "flower" in command
    assert "--broker=redis://:${SEEDGRID_REDIS_PASSWORD}@redis:6379/0" in command


def test_readme_starts_with_the_demo_and_the_test_command(readme_commands):
    demo, tests = readme_commands[:2]
    setup = "python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 && "
    assert demo == setup + "pip install -e '.[worker]' && seedgrid demo --out demo-out"
    assert tests == setup + "pip install -e '.[worker,client,dev]' && python -m pytest"


def test_ci_runs_the_readme_test_command_verbatim(readme_commands):
    script = ROOT / ".ci" / "run"
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert "export QT_QPA_PLATFORM=offscreen" in text
    assert readme_commands[1] in text.splitlines()
    assert os.stat(script).st_mode & stat.S_IXUSR


def test_seedgrid_help_lists_every_subcommand():
    result = subprocess.run(
        [sys.executable, "-m", "seedgrid.client.cli.main", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    listed = set(re.findall(r"^ {4}(\w+)", result.stdout, re.M))
    assert set(SUBCOMMANDS) <= listed, result.stdout
