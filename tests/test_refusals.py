"""Bad input is refused with a message naming the field; nothing bad is queued or crashes a worker."""

import uuid

import pytest

from seedgrid.shared.job import JobState
from seedgrid.shared.jobstore import JobStore
from seedgrid.shared.names import TASK_GENERATE, queue_for_model, queue_keys
from seedgrid.shared.request import JobRequest, RequestError
from tests.helpers import wait_until

GOOD = dict(prompts=["a lighthouse"], seeds=[0], steps=2, width=64, height=64)

BAD_FIELDS = [
    ("width", {"width": 500}),
    ("width", {"width": 56}),
    ("width", {"width": 2056}),
    ("height", {"height": 0}),
    ("height", {"height": 4096}),
    ("steps", {"steps": 0}),
    ("steps", {"steps": 151}),
    ("steps", {"steps": 2.5}),
    ("guidance", {"guidance": -0.1}),
    ("guidance", {"guidance": 30.5}),
    ("guidance", {"guidance": float("nan")}),
    ("seeds", {"seeds": [-1]}),
    ("seeds", {"seeds": [2**32]}),
    ("seeds", {"seeds": []}),
    ("seeds", {"seeds": list(range(257))}),
    ("seeds", {"seeds": ["7"]}),
    ("prompts", {"prompts": []}),
    ("prompts", {"prompts": ["x" * 2001]}),
    ("prompts", {"prompts": ["  "]}),
    ("prompts", {"prompts": ["p"] * 65}),
    ("negative_prompt", {"negative_prompt": "n" * 2001}),
    ("scheduler", {"scheduler": "turbo"}),
    ("model", {"model": "../etc/passwd"}),
    ("model", {"model": ""}),
    ("items", {"prompts": ["p"] * 16, "seeds": list(range(17))}),
    ("bogus", {"bogus": 1}),
]


@pytest.mark.parametrize("field,change", BAD_FIELDS, ids=[f"{f}-{i}" for i, (f, _) in enumerate(BAD_FIELDS)])
def test_every_bound_is_refused_at_submit_naming_the_field(client, tiny_worker, field, change):
    before = queued_messages(client)
    with pytest.raises(RequestError) as exc:
        client.submit({**GOOD, **change})
    assert exc.value.field == field and str(exc.value).startswith(f"{field}: ")
    assert client.jobs() == [] and queued_messages(client) == before


def queued_messages(client) -> int:
    return sum(client.redis.llen(key) for key in queue_keys(queue_for_model("tiny")))


def test_model_no_worker_serves_is_refused_unless_queued_anyway(client, tiny_worker):
    with pytest.raises(RequestError, match="model: no online worker serves 'someone/else'"):
        client.submit({**GOOD, "model": "someone/else"})
    assert client.jobs() == []
    job_id = client.submit({**GOOD, "model": "someone/else"}, require_worker=False)
    assert client.status(job_id).state == JobState.QUEUED
    client.cancel(job_id)


RAW_BAD = [
    ("seeds", {**GOOD, "seeds": [2**40]}),
    ("width", {**GOOD, "width": 10**9}),
    ("prompts", {**GOOD, "prompts": "not a list"}),
    ("model", {**GOOD, "model": "another-model"}),
    ("request", ["not", "an", "object"]),
    ("bogus", {**GOOD, "bogus": {"nested": True}}),
]


def test_raw_tasks_with_bad_fields_are_refused_by_the_worker_which_keeps_serving(client, tiny_worker):
    """Sent around the client's checks, straight onto the worker's queue."""
    job_ids = {}
    for field, payload in RAW_BAD:
        job_id = uuid.uuid4().hex
        job_ids[job_id] = field
        client.celery.send_task(TASK_GENERATE, args=[job_id, payload], task_id=job_id, queue=queue_for_model("tiny"))
    client.celery.send_task(TASK_GENERATE, args=[], queue=queue_for_model("tiny"))  # wrong arity
    client.celery.send_task(TASK_GENERATE, args=[{"x": 1}, None, 3], queue=queue_for_model("tiny"))
    store = JobStore(client.redis)
    for job_id, field in job_ids.items():
        status = wait_until(
            lambda: (s := store.status(job_id)) and s.state.finished and s, message=f"refusal of {field}"
        )
        assert status.state == JobState.FAILED and status.error.startswith(f"{field}: "), status.error
    good = client.submit(GOOD)
    assert client.wait(good, timeout=60).state == JobState.SUCCEEDED
    assert tiny_worker.alive()


def test_pickle_message_is_refused_and_worker_keeps_serving(client, tiny_worker):
    job_id = uuid.uuid4().hex
    # Other steps than the job queued after it, which could otherwise take this one into its batch.
    request = JobRequest(**{**GOOD, "steps": 3})
    JobStore(client.redis).create(job_id, request, client.client_id)
    client.celery.send_task(
        TASK_GENERATE,
        args=[job_id, request.model_dump()],
        task_id=job_id,
        queue=queue_for_model("tiny"),
        serializer="pickle",
    )
    after = client.submit(GOOD)  # queued behind the pickled message on the same queue
    assert client.wait(after, timeout=60).state == JobState.SUCCEEDED
    assert client.status(job_id).state == JobState.QUEUED and client.images(job_id) == []
    assert "pickle" in open(tiny_worker.log_path).read()
    assert tiny_worker.alive()
