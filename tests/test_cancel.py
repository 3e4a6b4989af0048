"""Cancelling jobs through Redis: a running job stops within a step or two, a queued one never runs."""

from seedgrid.shared.job import JobState
from seedgrid.shared.request import JobRequest
from tests.helpers import wait_until

LONG = dict(prompts=["a long job"], seeds=list(range(8)), steps=150, width=128, height=128)


def test_cancel_running_job_stops_within_two_steps_and_worker_takes_next(client, tiny_worker):
    job_id = client.submit(JobRequest(**LONG))
    wait_until(lambda: client.status(job_id).step >= 3, message="the job to reach step 3")
    seen = client.status(job_id).step
    assert client.cancel(job_id).state in (JobState.RUNNING, JobState.CANCELLED)
    final = client.wait(job_id, timeout=60)
    assert final.state == JobState.CANCELLED
    assert final.step <= seen + 2, f"cancelled at step {seen}, stopped at step {final.step}"
    assert client.images(job_id) == []

    next_id = client.submit(JobRequest(prompts=["after the cancel"], seeds=[1], steps=4, width=64, height=64))
    after = client.wait(next_id, timeout=60)
    assert after.state == JobState.SUCCEEDED and after.worker == tiny_worker.name


def test_cancelled_queued_job_never_runs(client, tiny_worker):
    blocker = client.submit(JobRequest(**LONG))
    queued = client.submit(JobRequest(prompts=["never runs"], seeds=[0], steps=4, width=64, height=64))
    wait_until(lambda: client.status(blocker).state == JobState.RUNNING, message="the blocker to run")
    assert client.status(queued).state == JobState.QUEUED
    assert client.cancel(queued).state == JobState.CANCELLED
    client.cancel(blocker)
    assert client.wait(blocker, timeout=60).state == JobState.CANCELLED
    probe = client.submit(JobRequest(prompts=["probe"], seeds=[0], steps=2, width=64, height=64))
    assert client.wait(probe, timeout=60).state == JobState.SUCCEEDED  # the queue has moved past the cancelled job
    final = client.status(queued)
    assert final.state == JobState.CANCELLED and final.attempts == 0 and final.started_at == 0
    assert client.images(queued) == []
