"""The documented wire contract (docs/contract.md): the request schema, a job sent with plain Celery
(examples/raw_celery.py), and the worker's answer to tasks sent around the contract."""

import ast
import base64
import hashlib
import importlib.util
import io
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from PIL import Image

from seedgrid.client.api import SeedgridClient
from seedgrid.shared import limits as L
from seedgrid.shared import names
from seedgrid.shared.job import JobState
from seedgrid.shared.jobstore import JobStore
from seedgrid.shared.pngmeta import read_png_metadata
from seedgrid.shared.redis_conn import connect
from seedgrid.shared.request import JobRequest, LoraRef, RequestError, parse_request
from seedgrid.shared.schema import REGENERATE, SCHEMA_FILE, request_schema, schema_text
from seedgrid.worker.job_runner import run_job
from seedgrid.worker.runtime import WorkerRuntime
from seedgrid.worker.simulated import SimulatedEngine
from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "raw_celery.py"
# Settings no other test uses, so no other job's batch takes these jobs in.
SMALL = dict(prompts=["a lighthouse"], seeds=[0], steps=3, width=72, height=64, scheduler="euler")


def load_example():
    spec = importlib.util.spec_from_file_location("raw_celery", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def accepted(**fields) -> bool:
    try:
        parse_request({"prompts": ["a"], "seeds": [0], **fields})
    except RequestError:
        return False
    return True


# -- the request's JSON Schema


def test_the_schema_file_is_what_the_model_generates():
    path = ROOT / SCHEMA_FILE
    current = path.read_text() if path.exists() else ""
    assert current == schema_text(), f"{SCHEMA_FILE} is out of date with JobRequest: run `{REGENERATE}`"


def test_the_schema_bounds_are_the_bounds_the_validators_check():
    props = request_schema()["properties"]
    assert set(props) == set(JobRequest.model_fields)
    for name in ("width", "height", "steps", "guidance"):
        step = props[name].get("multipleOf", 1 if props[name]["type"] == "integer" else 0.5)
        low, high = props[name]["minimum"], props[name]["maximum"]
        assert accepted(**{name: low}) and accepted(**{name: high}), name
        assert not accepted(**{name: low - step}) and not accepted(**{name: high + step}), name
    assert not accepted(width=L.MIN_SIZE + props["width"]["multipleOf"] // 2)
    seed = props["seeds"]["items"]
    assert accepted(seeds=[seed["minimum"], seed["maximum"]])
    assert not accepted(seeds=[seed["minimum"] - 1]) and not accepted(seeds=[seed["maximum"] + 1])
    assert accepted(seeds=list(range(props["seeds"]["maxItems"])))
    assert not accepted(seeds=list(range(props["seeds"]["maxItems"] + 1))) and not accepted(seeds=[])
    prompt = props["prompts"]["items"]
    assert accepted(prompts=["p"] * props["prompts"]["maxItems"]) and accepted(prompts=["x" * prompt["maxLength"]])
    assert not accepted(prompts=["p"] * (props["prompts"]["maxItems"] + 1)) and not accepted(prompts=[])
    assert not accepted(prompts=["x" * (prompt["maxLength"] + 1)]) and not accepted(prompts=[" "])
    for name in ("negative_prompt", "model"):
        assert accepted(**{name: "m" * props[name]["maxLength"]})
        assert not accepted(**{name: "m" * (props[name]["maxLength"] + 1)}), name
    assert not accepted(model="") and not accepted(model="a/../b") and not accepted(model="-x")
    assert all(accepted(scheduler=s) for s in props["scheduler"]["enum"]) and not accepted(scheduler="turbo")
    assert props["scheduler"]["default"] in props["scheduler"]["enum"]
    assert not accepted(bogus=1) and request_schema()["additionalProperties"] is False


def test_the_lora_schema_bounds_are_the_bounds_the_validators_check():
    schema = request_schema()
    lora = schema["$defs"]["LoraRef"]["properties"]
    name, weight = lora["name"], lora["weight"]
    at_most = schema["properties"]["loras"]["maxItems"]
    many = [{"name": f"l{i}", "weight": 1} for i in range(at_most + 1)]
    assert accepted(loras=many[:at_most]) and not accepted(loras=many)
    assert accepted(loras=[{"name": "n" * name["maxLength"], "weight": weight["minimum"]}])
    assert not accepted(loras=[{"name": "n" * (name["maxLength"] + 1), "weight": 1}])
    assert accepted(loras=[{"name": "a", "weight": weight["maximum"]}])
    assert not accepted(loras=[{"name": "a", "weight": weight["maximum"] + 0.01}])
    assert not accepted(loras=[{"name": "a", "weight": weight["minimum"] - 0.01}])
    assert not accepted(loras=[{"name": "sub/dir", "weight": 1}]) and not accepted(loras=[{"name": "", "weight": 1}])
    assert schema["$defs"]["LoraRef"]["additionalProperties"] is False


def test_the_documented_batch_key_with_loras():
    base = JobRequest(prompts=["a"], seeds=[0], guidance=7.0)
    loras = [LoraRef(name="style", weight=0.8), LoraRef(name="detail", weight=1)]
    documented = "tiny|512x512|20|dpm++_2m|7.0|detail:1.0|style:0.8"
    key = hashlib.sha256(documented.encode()).hexdigest()[:20]
    assert base.model_copy(update={"loras": loras}).batch_key() == key
    assert base.batch_key() == hashlib.sha256(b"tiny|512x512|20|dpm++_2m|7.0").hexdigest()[:20]


# -- a job sent with plain Celery, as the example does


def test_the_example_uses_only_celery_and_redis():
    tree = ast.parse(EXAMPLE.read_text())
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "seedgrid" not in imported and {"celery", "redis"} <= imported
    assert imported - {"celery", "redis"} <= set(sys.stdlib_module_names)


@pytest.mark.parametrize("guidance", [7, 7.5, 0.1, 1e-05, 30.0])
def test_the_example_writes_the_record_the_python_client_writes(redis_url, guidance):
    """Field for field, including the merge pool entry: what `seedgrid jobs`, progress and shared batches read."""
    example, r = load_example(), connect(redis_url)
    store = JobStore(r)
    settings = dict(model="nobody/contract-test", width=64, height=64, steps=4, guidance=guidance)
    request = JobRequest(prompts=["a", "b"], seeds=[1, 2], **{**settings, "guidance": float(guidance)})
    ours, theirs = uuid.uuid4().hex, uuid.uuid4().hex
    store.create(ours, request, "contract-python", priority=names.PRIORITIES["low"])
    raw = example.make_request(["a", "b"], [1, 2], **settings)
    example.write_record(r, theirs, raw, "contract-raw", names.PRIORITIES["low"], ttl=store.ttl)
    try:
        a, b = (
            {k.decode(): v.decode() for k, v in r.hgetall(names.job_key(job_id)).items()} for job_id in (ours, theirs)
        )
        assert set(a) == set(b)
        assert JobRequest.model_validate_json(b.pop("request")) == JobRequest.model_validate_json(a.pop("request"))
        assert abs(float(b.pop("submitted_at")) - float(a.pop("submitted_at"))) < 5
        assert (a.pop("client_id"), b.pop("client_id")) == ("contract-python", "contract-raw")
        assert a == b
        assert 0 < r.ttl(names.job_key(theirs)) <= store.ttl
        pool = names.merge_pool_key(request.batch_key())
        assert r.zscore(pool, theirs) is not None and r.zscore(pool, ours) is not None
        assert store.client_job_ids("contract-raw")[0] == theirs
        with SeedgridClient(redis_url, client_id="contract-raw") as client:
            status = client.jobs()[0]
        assert (status.job_id, status.state, status.images_total, status.steps) == (theirs, JobState.QUEUED, 4, 4)
    finally:
        for job_id in (ours, theirs):
            store.request_cancel(job_id)
        r.close()


def test_a_job_written_by_the_example_shares_a_batch(redis_url):
    """The worker's runner in this process (simulated engine): the example's job joins another client's batch."""
    example, store = load_example(), JobStore(connect(redis_url))
    runtime = WorkerRuntime(engine=SimulatedEngine(0.0, 4), store=store, name="contract-merge", merge=True)
    settings = dict(model="simulated", width=72, height=72, steps=2, guidance=3.25)
    host = JobRequest(prompts=["host"], seeds=[1], **settings)
    host_id, guest_id = uuid.uuid4().hex, uuid.uuid4().hex
    store.create(host_id, host, "contract-host")
    example.write_record(store.redis, guest_id, example.make_request(["guest"], [2], **settings), "contract-raw", 3)
    result = run_job(runtime, host_id, host.model_dump(mode="json"), resend=lambda *_: None)
    assert result["state"] == "succeeded"
    guest = store.status(guest_id)
    assert guest.state == JobState.SUCCEEDED and guest.merged_into == host_id, guest
    assert guest.progress == 1.0 and (guest.images_done, guest.images_total, guest.steps) == (1, 1, 2)
    assert [(i.prompt, i.seed) for i in store.images(guest_id)] == [("guest", 2)]
    store.redis.close()


def test_a_job_sent_with_plain_celery_succeeds_and_is_listed(redis_url, tiny_worker, tmp_path):
    client_id = f"raw-{uuid.uuid4().hex[:8]}"
    args = ["--redis", redis_url, "--client-id", client_id, "--out", str(tmp_path), "--seeds", "0", "1"]
    args += ["--width", "64", "--height", "64", "--steps", "4", "--timeout", "120", "a lighthouse"]
    run = subprocess.run([sys.executable, str(EXAMPLE), *args], capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert summary["state"] == "succeeded" and len(summary["images"]) == 2, summary
    request = JobRequest(prompts=["a lighthouse"], seeds=[0, 1], width=64, height=64, steps=4)
    for seed, path in zip([0, 1], summary["images"], strict=True):
        data = Path(path).read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            assert (image.format, image.size) == ("PNG", (64, 64))
            assert f"Seed: {seed}, Size: 64x64" in image.info["parameters"]
        meta = read_png_metadata(data)
        assert meta.request == request and meta.item.seed == seed and meta.extra["job_id"] == summary["job_id"]
    with SeedgridClient(redis_url, client_id=client_id) as client:
        jobs = client.jobs()
    assert [job.job_id for job in jobs] == [summary["job_id"]]
    job = jobs[0]
    assert job.state == JobState.SUCCEEDED and job.request == request and job.worker == tiny_worker.name
    # Progress as the worker recorded it: every step of every image.
    assert (job.step, job.steps, job.images_done, job.images_total, job.progress) == (4, 4, 2, 2, 1.0)


def test_the_least_message_the_contract_describes_runs_without_celery(client, tiny_worker):
    """docs/contract.md's message, pushed with LPUSH onto the normal-priority list of the model's queue."""
    request = JobRequest(**SMALL)
    job_id = uuid.uuid4().hex
    client.store.create(job_id, request, client.client_id)
    embed = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
    body = json.dumps([[job_id, request.model_dump(mode="json")], {}, embed])
    queue = names.queue_for_model("tiny")
    message = {
        "body": base64.b64encode(body.encode()).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {"lang": "py", "task": names.TASK_GENERATE, "id": job_id},
        "properties": {
            "delivery_info": {"exchange": "", "routing_key": queue},
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
            "priority": 3,
        },
    }
    client.redis.lpush(f"{queue}\x06\x163", json.dumps(message))
    assert client.wait(job_id, timeout=60).state == JobState.SUCCEEDED
    assert [(i.prompt, i.seed) for i in client.images(job_id)] == [("a lighthouse", 0)]


# -- tasks sent around the contract


def queued_on(client, queue: str) -> int:
    return sum(client.redis.llen(key) for key in names.queue_keys(queue))


def send_without_queue(client, job_id: str, request: JobRequest) -> None:
    """As `send_task` does when no queue is named: to Celery's default queue."""
    client.celery.send_task(names.TASK_GENERATE, args=[job_id, request.model_dump(mode="json")], task_id=job_id)


def test_a_task_sent_to_the_default_queue_fails_at_once_naming_its_queue(client, tiny_worker):
    request = JobRequest(**SMALL)
    job_id = uuid.uuid4().hex
    client.store.create(job_id, request, client.client_id)
    send_without_queue(client, job_id, request)
    status = client.wait(job_id, timeout=30)
    assert status.state == JobState.FAILED and status.error.startswith("queue: "), status.error
    assert f"'{names.DEFAULT_QUEUE}'" in status.error and f"'{names.queue_for_model('tiny')}'" in status.error
    assert client.images(job_id) == [] and queued_on(client, names.DEFAULT_QUEUE) == 0
    assert [job.job_id for job in client.jobs()] == [job_id]
    assert tiny_worker.alive()


def test_a_stray_task_on_the_default_queue_leaves_a_finished_job_alone(client, tiny_worker):
    job_id = client.submit(SMALL)
    assert client.wait(job_id, timeout=60).state == JobState.SUCCEEDED
    images = client.images(job_id)
    send_without_queue(client, job_id, JobRequest(**SMALL))  # a second task for the same job
    marker = uuid.uuid4().hex  # queued behind it: once it has failed, the stray task was handled
    client.store.create(marker, JobRequest(**SMALL), client.client_id)
    send_without_queue(client, marker, JobRequest(**SMALL))
    assert client.wait(marker, timeout=30).state == JobState.FAILED
    status = client.status(job_id)
    assert status.state == JobState.SUCCEEDED and status.error == "" and client.images(job_id) == images


def test_a_task_on_the_wrong_queue_leaves_a_running_job_alone(redis_url):
    store = JobStore(connect(redis_url))
    runtime = WorkerRuntime(engine=SimulatedEngine(0.0, 4), store=store, name="contract-queue", merge=False)
    request = JobRequest(**{**SMALL, "model": "simulated"})
    job_id = uuid.uuid4().hex
    store.create(job_id, request, "contract-queue")
    store.mark_started(job_id, "another-worker")
    result = run_job(runtime, job_id, request.model_dump(mode="json"), queue=names.DEFAULT_QUEUE)
    assert result == {"job_id": job_id, "state": "started"}
    status = store.status(job_id)
    assert (status.state, status.worker, status.error) == (JobState.STARTED, "another-worker", "")
    store.request_cancel(job_id)
    store.redis.close()


def test_a_task_without_a_job_record_is_refused_with_a_record_saying_why(client, tiny_worker):
    job_id = uuid.uuid4().hex
    request = JobRequest(**SMALL).model_dump(mode="json")
    client.celery.send_task(names.TASK_GENERATE, args=[job_id, request], queue=names.queue_for_model("tiny"))
    status = wait_until(
        lambda: (s := client.store.status(job_id)) and s.state.finished and s, timeout=30, message="the refusal"
    )
    assert status.state == JobState.FAILED and status.error.startswith("job: "), status.error
    assert "docs/contract.md" in status.error and client.images(job_id) == []
    assert 0 < client.redis.ttl(names.job_key(job_id)) <= client.store.ttl
    assert tiny_worker.alive()
