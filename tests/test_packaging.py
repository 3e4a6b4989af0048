"""The deployment files and the README's commands: what a new user and CI run first."""

import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import sysconfig
import time
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SUBCOMMANDS = ["demo", "generate", "fetch", "worker", "workers", "jobs", "cancel", "redis", "health"]
REDIS_URL = "redis://:${SEEDGRID_REDIS_PASSWORD:?set a password}@redis:6379/0"


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


def test_redis_requires_a_password_persists_and_never_evicts(compose):
    redis = compose["services"]["redis"]
    assert redis["image"] == "redis:7"
    script = redis["command"][-1]
    assert redis["command"][:2] == ["sh", "-c"]
    assert "redis-server -" in script and 'requirepass "$$password"' in script  # config on stdin
    assert "cat /run/secrets/redis_password" in script and redis["secrets"] == ["redis_password"]
    assert compose["secrets"]["redis_password"] == {"environment": "SEEDGRID_REDIS_PASSWORD"}
    argv = shlex.split(script.split("redis-server -", 1)[1].split("<<", 1)[0].replace("\\\n", " "))
    options = dict(zip(argv[::2], argv[1::2], strict=True))
    assert options["--appendonly"] == "yes" and options["--appendfsync"] == "everysec"
    assert options["--maxmemory-policy"] == "noeviction"  # queued jobs are never evicted
    assert re.fullmatch(r"\$\{SEEDGRID_REDIS_MAXMEMORY:-\d+gb\}", options["--maxmemory"])
    assert named_volume_at(redis, "/data", compose)
    test = " ".join(redis["healthcheck"]["test"])
    assert "redis-cli" in test and "PONG" in test and "/run/secrets/redis_password" in test
    assert "SEEDGRID_REDIS_PASSWORD" not in str(redis)  # not in its command line nor its environment
    assert "profiles" not in redis


@pytest.mark.skipif(not shutil.which("sh"), reason="needs a POSIX shell")
def test_the_compose_redis_command_starts_a_redis_that_hides_its_password(compose, tmp_path):
    """The service's shell script, run here against a local redis-server in place of the image's."""
    from seedgrid.shared.embedded_redis import _free_port, find_redis_server

    redis_py = pytest.importorskip("redis")
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    server = find_redis_server()
    cli = Path(server).with_name("redis-cli")
    password, port = "a1b2c3-compose-secret", _free_port()
    secret = tmp_path / "redis_password"
    secret.write_text(password + "\n")
    service = compose["services"]["redis"]

    def local(text: str) -> str:
        text = interpolate_defaults(text).replace("$$", "$").replace("/run/secrets/redis_password", str(secret))
        return text.replace("-h 127.0.0.1", f"-h 127.0.0.1 -p {port}").replace("redis-cli", shlex.quote(str(cli)))

    script = local(service["command"][-1]).replace(
        "docker-entrypoint.sh redis-server -", f"{shlex.quote(server)} - --port {port} --bind 127.0.0.1"
    )
    process = subprocess.Popen(["sh", "-c", script], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        client = redis_py.Redis(port=port, password=password, socket_timeout=5)
        deadline = time.monotonic() + 10
        while True:
            try:
                assert client.ping()
                break
            except redis_py.ConnectionError:
                assert process.poll() is None and time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        default_gb = int(re.search(r"SEEDGRID_REDIS_MAXMEMORY:-(\d+)gb", service["command"][-1]).group(1))
        assert client.config_get("maxmemory")["maxmemory"] == str(default_gb * 2**30)
        assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
        assert client.config_get("appendonly")["appendonly"] == "yes"
        with pytest.raises(redis_py.AuthenticationError):
            redis_py.Redis(port=port, password="wrong", retry=Retry(NoBackoff(), 0)).ping()
        assert password.encode() not in Path(f"/proc/{process.pid}/cmdline").read_bytes()
        if cli.exists():
            healthcheck = subprocess.run(["sh", "-c", local(service["healthcheck"]["test"][1])], timeout=30)
            assert healthcheck.returncode == 0
        client.close()
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_worker_gets_one_gpu_the_model_cache_and_a_healthy_redis(compose):
    worker = compose["services"]["worker"]
    assert worker["build"] == "."
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert len(devices[0].get("device_ids", [])) == 1 or devices[0].get("count") == 1
    env = worker["environment"]
    assert env["SEEDGRID_REDIS_URL"] == REDIS_URL
    assert env["CUDA_VISIBLE_DEVICES"] == "0"
    assert env["HF_TOKEN"] == "${HF_TOKEN:-}"  # gated models
    assert named_volume_at(worker, env["HF_HOME"], compose)
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"
    assert worker["restart"] == "unless-stopped"
    assert "profiles" not in worker


def seconds(duration: str) -> float:
    """A compose duration such as 1m30s."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert "".join(n + u for n, u in parts) == duration, f"not a duration: {duration}"
    return sum(float(n) * units[u] for n, u in parts)


def test_worker_health_is_its_heartbeat_and_a_stop_lets_its_batch_finish(compose):
    from seedgrid.worker.cli import build_parser
    from seedgrid.worker.supervisor import STOP_TIMEOUT_S

    worker = compose["services"]["worker"]
    name = build_parser().parse_args(shlex.split(interpolate_defaults(worker["command"]))[1:]).name
    assert name, "the worker needs a fixed --name for its health check"
    test = [interpolate_defaults(arg) for arg in worker["healthcheck"]["test"]]
    assert test == ["CMD", "seedgrid", "health", "--worker", name]
    assert seconds(worker["healthcheck"]["start_period"]) >= 600  # the first start downloads the model
    # SIGTERM lets the running batch finish (the supervisor waits as long for one); SIGKILL would lose it.
    assert seconds(worker["stop_grace_period"]) > STOP_TIMEOUT_S
    assert worker["init"] is True  # PID 1 must pass SIGTERM on


def test_worker_command_is_a_valid_seedgrid_worker_command_line(compose):
    from seedgrid.worker.cli import build_parser

    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r'^ENTRYPOINT \["seedgrid"\]$', dockerfile, re.M)
    argv = shlex.split(interpolate_defaults(compose["services"]["worker"]["command"]))
    assert argv[0] == "worker"
    args = build_parser().parse_args(argv[1:])
    assert args.models == ["stable-diffusion-v1-5/stable-diffusion-v1-5"]
    assert args.device == "cuda"


def test_dockerfile_installs_every_package_of_the_distribution():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=nvidia/cuda:\S+-ubuntu\S+$", dockerfile, re.M)
    assert re.search(r"^FROM \$\{BASE_IMAGE\}$", dockerfile, re.M)
    assert re.search(r'^RUN pip install -c constraints\.txt "\.\[worker\]"$', dockerfile, re.M)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    copied = set(re.findall(r"^COPY (?:\S+ )*?(\w+) \./\1$", dockerfile, re.M))
    packages = set(pyproject["tool"]["setuptools"]["package-dir"].values())
    assert packages <= copied, f"Dockerfile does not copy {packages - copied}"
    assert re.search(r"^COPY pyproject\.toml README\.md \./$", dockerfile, re.M)
    # The build context holds only what is copied: not .env with the Redis password, nor .venv.
    ignored = (ROOT / ".dockerignore").read_text().split()
    sources = {s for line in re.findall(r"^COPY (.+) \S+$", dockerfile, re.M) for s in line.split()}
    assert ignored[ignored.index("*") + 1 :] and {f"!{s}" for s in sources} <= set(ignored)


def pinned() -> dict[str, str]:
    """constraints.txt as {canonical name: version}."""
    from packaging.utils import canonicalize_name

    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and version and not set(version) & set("<>=!~*+, "), f"not an exact pin: {line}"
            pins[canonicalize_name(name)] = version
    return pins


def test_dockerfile_installs_the_tested_torch_and_the_tested_set(readme_commands):
    torch = pinned()["torch"]
    assert torch == "2.13.0"
    ci = (ROOT / ".ci" / "run").read_text()
    for command in (*readme_commands[:2], ci):
        assert set(re.findall(r"\btorch==([\w.+]+)", command)) == {torch}
    dockerfile = (ROOT / "Dockerfile").read_text()
    installs = re.findall(r"^RUN pip install (.*)$", dockerfile, re.M)
    assert installs[0].startswith("-c constraints.txt ") and installs[0].endswith(f" torch=={torch}")
    assert all(line.startswith("-c constraints.txt ") for line in installs)
    assert dockerfile.index("COPY constraints.txt ./") < dockerfile.index("RUN pip install")
    # CI applies the same file to every pip install, before the first one.
    export = 'export PIP_CONSTRAINT="$PWD/constraints.txt"'
    lines = [line.strip() for line in ci.splitlines() if not line.lstrip().startswith("#")]
    first_install = next(i for i, line in enumerate(lines) if "pip install" in line)
    assert export in lines[:first_install]


def test_every_package_the_pyproject_names_is_pinned_in_the_constraints():
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    named = [*pyproject["dependencies"], *(r for extra in pyproject["optional-dependencies"].values() for r in extra)]
    pins = pinned()
    for requirement in map(Requirement, named):
        version = pins.get(canonicalize_name(requirement.name))
        assert version, f"constraints.txt does not pin {requirement.name}"
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{requirement.name}=={version}: {requirement}"
        )
    assert "seedgrid" not in pins


@pytest.mark.skipif(
    not os.environ.get("PIP_CONSTRAINT"), reason="installed without the constraints file (CI sets PIP_CONSTRAINT)"
)
def test_the_installed_packages_are_the_tested_set():
    """A package pip upgraded past its pin: regenerate constraints.txt (see its header) or reinstall with it."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.version import Version

    drifted = []
    for name, pin in pinned().items():
        try:
            installed = Version(version(name))
        except PackageNotFoundError:
            continue  # e.g. a dev tool this environment does not have
        if installed.public != pin:
            drifted.append(f"{name} {installed} (pinned {pin})")
    assert not drifted, "installed versions differ from constraints.txt: " + ", ".join(drifted)


def test_the_distribution_installs_one_top_level_package_seedgrid(tmp_path):
    source = tmp_path / "source"  # a copy, so that the build leaves nothing in the checkout
    for name in ("shared", "worker", "client"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    # Every package of the source tree, sub-packages too (pyproject lists them one by one).
    inits = sorted(init.relative_to(source).as_posix() for init in source.glob("*/**/__init__.py"))
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path)]
    subprocess.run([*build, str(source)], check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("seedgrid-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top_level == {"seedgrid"}
    for init in inits:
        assert f"seedgrid/{init}" in names, f"the wheel lacks the package {init.removesuffix('/__init__.py')}"
    assert "seedgrid/client/gui/main_window.py" in names and "seedgrid/worker/models/tiny.py" in names


def test_flower_is_optional_and_uses_the_same_broker(compose):
    flower = compose["services"]["flower"]
    assert flower["profiles"] == ["monitoring"]
    command = flower["command"]
    assert command[0] == "celery" and "flower" in command
    assert not any("redis://" in arg or "PASSWORD" in arg for arg in command)  # `ps` shows a command line
    assert flower["environment"]["CELERY_BROKER_URL"] == REDIS_URL


def fresh_clone_setup(command: str) -> tuple[list[list[str]], set[str]]:
    """A README command that sets up a fresh clone: the argv of each `&&` step after seedgrid's install, and the
    extras it installs. Checks that it is one line, makes a venv and activates it, then installs the tested torch
    and only then seedgrid (left to resolve torch itself, pip may pick another build)."""
    assert "\n" not in command and "\\" not in command, f"not one line to paste: {command}"
    steps = [shlex.split(step) for step in command.split("&&")]
    venvs = [i for i, argv in enumerate(steps) if argv[1:3] == ["-m", "venv"]]
    assert venvs, f"makes no venv: {command}"
    script = f"{steps[venvs[0]][3]}/bin/activate"
    activates = [i for i, argv in enumerate(steps) if argv in ([".", script], ["source", script])]
    installs = [
        (i, argv[argv.index("install") + 1 :])
        for i, argv in enumerate(steps)
        if "pip" in argv[:3] and "install" in argv
    ]
    torches = [(i, r) for i, reqs in installs for r in reqs if re.match(r"torch\b", r)]
    assert [r for _, r in torches] == [f"torch=={pinned()['torch']}"], command  # the version constraints.txt pins
    projects = [
        (i, set(m.group(1).split(",")))
        for i, reqs in installs
        for r in reqs
        if (m := re.fullmatch(r"\.\[([\w,]+)\]", r))
    ]
    assert len(projects) == 1, f"not one install of the checkout with extras: {command}"
    [(project, extras)] = projects
    assert activates and venvs[0] < activates[0] < torches[0][0] < project, command
    return steps[project + 1 :] or [[]], extras


def test_readme_starts_with_the_demo_and_the_test_command(readme_commands):
    """A new user's first two commands: the demo, then the tests, each from a fresh clone."""
    demo, tests = readme_commands[:2]
    from seedgrid.client.cli.main import build_parser

    after, extras = fresh_clone_setup(demo)
    assert "worker" in extras and after[-1][:2] == ["seedgrid", "demo"]
    assert build_parser().parse_args(after[-1][1:]).command == "demo"  # options that `seedgrid demo` takes
    after, extras = fresh_clone_setup(tests)
    # The tests start workers (worker), the desktop app (client) and run on pytest and its plugins (dev).
    assert {"worker", "client", "dev"} <= extras and "pytest" in after[-1][:3]


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


def test_the_installed_distribution_names_one_top_level_package(tmp_path):
    # As pip installed it into the environment (not the egg-info an editable build leaves in the checkout).
    (seedgrid,) = metadata.distributions(name="seedgrid", path=[sysconfig.get_paths()["purelib"]])
    assert (seedgrid.read_text("top_level.txt") or "").split() == ["seedgrid"]
    # From a folder outside the checkout, only seedgrid.* imports.
    probe = "import importlib.util as u; print(*[n for n in sys.argv[1:] if u.find_spec(n)])"
    names = ["shared", "worker", "client", "seedgrid.shared", "seedgrid.worker", "seedgrid.client"]
    found = subprocess.run(
        [sys.executable, "-c", f"import sys; {probe}", *names], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert found.stdout.split() == ["seedgrid.shared", "seedgrid.worker", "seedgrid.client"], found.stderr
