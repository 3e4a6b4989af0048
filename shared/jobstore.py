"""The job records in Redis, read and written by clients and workers alike."""

import json
import time
from collections.abc import Sequence

import redis

from seedgrid.shared import names
from seedgrid.shared.celery_config import result_ttl
from seedgrid.shared.job import ImageRecord, JobState, JobStatus
from seedgrid.shared.leases import lease_seconds
from seedgrid.shared.mergepool import add_to_pool
from seedgrid.shared.orphans import index_queued
from seedgrid.shared.replies import data, text
from seedgrid.shared.request import JobRequest
from seedgrid.shared.workers import WorkerInfo

# KEYS: images hash, PNG key, job hash, preview key. ARGV: index, record JSON, PNG, ttl.
# One round trip; refuses a second store of the same index (a rerun after a worker died).
STORE_IMAGE_LUA = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[4])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('HSET', KEYS[3], 'images_done', redis.call('HLEN', KEYS[1]))
redis.call('DEL', KEYS[4])
return 1
"""

# KEYS: job hash, done list. ARGV: error, now, ttl, "1" to fail a queued job too (else only a missing one).
# Writes a failed record; leaves alone a job that is running, claimed into a batch or finished.
REFUSE_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  if ARGV[4] ~= '1' then return 0 end
  local state = redis.call('HGET', KEYS[1], 'state')
  if state and state ~= 'queued' then return 0 end
end
redis.call('HSET', KEYS[1], 'state', 'failed', 'error', ARGV[1], 'finished_at', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('RPUSH', KEYS[2], 1)
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 1
"""

# KEYS: the workers set, then the heartbeat key of each name in ARGV. Drops the names whose key expired.
FORGET_DEAD_WORKERS_LUA = """
for i, name in ipairs(ARGV) do
  if redis.call('EXISTS', KEYS[i + 1]) == 0 then redis.call('SREM', KEYS[1], name) end
end
return 0
"""


class JobStore:
    def __init__(self, client: redis.Redis, ttl: int | None = None):
        self.redis = client
        self.ttl = ttl or result_ttl()
        self._store_image_script = client.register_script(STORE_IMAGE_LUA)
        self._forget_dead_workers = client.register_script(FORGET_DEAD_WORKERS_LUA)
        self._refuse_script = client.register_script(REFUSE_LUA)

    # -- written by the client
    def create(
        self,
        job_id: str,
        request: JobRequest,
        client_id: str,
        priority: int = names.PRIORITIES["normal"],
        plot_id: str = "",
    ) -> None:
        key, now = names.job_key(job_id), time.time()
        with self.redis.pipeline() as p:
            p.hset(
                key,
                mapping={
                    "state": JobState.QUEUED.value,
                    "request": request.model_dump_json(),
                    "client_id": client_id,
                    "images_total": len(request.prompts) * len(request.seeds),
                    "steps": request.steps,
                    "priority": priority,
                    "submitted_at": now,
                    **({"plot_id": plot_id} if plot_id else {}),
                },
            )
            p.expire(key, self.ttl)
            if plot_id:
                p.rpush(names.plot_jobs_key(plot_id), job_id)
                p.expire(names.plot_jobs_key(plot_id), self.ttl)
            add_to_pool(p, job_id, request, priority, now, self.ttl)
            index_queued(p, job_id, request.model, self.ttl, now)
            p.lpush(names.client_jobs_key(client_id), job_id)
            p.ltrim(names.client_jobs_key(client_id), 0, 999)
            p.expire(names.client_jobs_key(client_id), self.ttl)
            p.execute()

    def request_cancel(self, job_id: str) -> None:
        self.redis.set(names.cancel_key(job_id), 1, ex=self.ttl)
        # A job still in the queue is cancelled at once; a running one at its next step.
        self._set_state_if(job_id, JobState.QUEUED, JobState.CANCELLED)

    # -- written by the worker
    def mark_started(self, job_id: str, worker: str, turn: int = 0, phase: str = "") -> int:
        """Record a start, in `phase` until the first step ("loading model NAME"); returns how often this turn
        was delivered (above 1: a worker died with it)."""
        key, turns = names.job_key(job_id), names.job_turns_key(job_id)
        with self.redis.pipeline() as p:
            p.hset(
                key,
                mapping={
                    "state": JobState.STARTED.value,
                    "worker": worker,
                    "step": 0,
                    "batch_size": 0,
                    "error": "",
                    "phase": phase,
                },
            )
            p.hsetnx(key, "started_at", time.time())
            p.hsetnx(key, "attempts", 1)
            p.hincrby(turns, str(turn), 1)
            p.expire(key, self.ttl)
            p.expire(turns, self.ttl)
            deliveries = int(p.execute()[3])
        if deliveries > 1:
            self.redis.hincrby(key, "attempts", 1)
        return deliveries

    def loaded(self, job_id: str, seconds: float) -> None:
        """The model load a started job waited for: seconds its run time does not spend generating."""
        self.redis.hincrbyfloat(names.job_key(job_id), "load_seconds", seconds)

    def requeued(self, job_id: str, next_turn: int | None = None, model: str = "") -> None:
        """Between two turns of a large job: back in the queue, behind other clients' jobs."""
        key = names.job_key(job_id)
        with self.redis.pipeline() as p:
            p.hset(key, mapping={"state": JobState.QUEUED.value, "step": 0, "batch_size": 0, "phase": ""})
            if model:
                index_queued(p, job_id, model, self.ttl)
            if next_turn is not None:  # what a takeover sends if the worker stops before the next turn starts
                p.hset(key, "turn", next_turn)
            p.execute()

    def progress(
        self, jobs: list[tuple[str, int, int]], step: int, steps: int, leases: Sequence[str] = (), worker: str = ""
    ) -> set[str]:
        """Record step `step` of `steps` of one batch, given (job id, images done, its images in the batch)
        for each job in it, and renew the claims on `leases` (jobs taken in from other clients' queues).
        Returns the ids of those jobs asked to cancel; one round trip."""
        with self.redis.pipeline(transaction=False) as p:
            for job_id, images_done, batch_size in jobs:
                p.hset(
                    names.job_key(job_id),
                    mapping={
                        "state": JobState.RUNNING.value,
                        "step": step,
                        "steps": steps,
                        "batch_size": batch_size,
                        "images_done": images_done,
                        "phase": "",  # the model has loaded
                    },
                )
            for job_id in leases:
                p.set(names.job_lease_key(job_id), worker, ex=lease_seconds())
            for job_id, _, _ in jobs:
                p.exists(names.cancel_key(job_id))
            cancelled = p.execute()[len(jobs) + len(leases) :]
        return {job_id for (job_id, _, _), flag in zip(jobs, cancelled, strict=True) if flag}

    def is_cancelled(self, job_id: str) -> bool:
        return bool(self.redis.exists(names.cancel_key(job_id)))

    def stored_indices(self, job_id: str) -> set[int]:
        return {int(i) for i in self.redis.hkeys(names.job_images_key(job_id))}

    def store_preview(self, job_id: str, index: int, step: int, data: bytes) -> None:
        """Replace the item's live preview (a small JPEG made at `step`)."""
        key = names.preview_key(job_id, index)
        with self.redis.pipeline() as p:
            p.hset(key, mapping={"step": step, "jpeg": data})
            p.expire(key, self.ttl)
            p.execute()

    def store_image(self, record: ImageRecord, png: bytes) -> bool:
        """Store one image and its record atomically, once: a rerun's second store is refused."""
        stored = self._store_image_script(
            keys=[
                names.job_images_key(record.job_id),
                names.image_png_key(record.job_id, record.index),
                names.job_key(record.job_id),
                names.preview_key(record.job_id, record.index),
            ],
            args=[str(record.index), record.model_dump_json(), png, self.ttl],
        )
        return bool(stored)

    def finish(self, job_id: str, state: JobState, error: str = "") -> None:
        with self.redis.pipeline() as p:
            p.hset(
                names.job_key(job_id),
                mapping={"state": state.value, "error": error, "phase": "", "finished_at": time.time()},
            )
            self._signal_finished(p, job_id)
            p.execute()

    def refuse(self, job_id: str, error: str, queued_too: bool = False) -> bool:
        """Fail a delivery that did not come through the contract: a job with no record (or, with
        `queued_too`, one still queued) gets a failed record that expires; any other job is left alone.
        True if it was refused."""
        keys = [names.job_key(job_id), names.job_done_key(job_id)]
        return bool(self._refuse_script(keys=keys, args=[error, time.time(), self.ttl, int(queued_too)]))

    def _signal_finished(self, p, job_id: str) -> None:
        """Wake clients blocked in wait_finished (the list is read without being emptied)."""
        p.rpush(names.job_done_key(job_id), 1)
        p.expire(names.job_done_key(job_id), self.ttl)

    def wait_finished(self, job_id: str, timeout: float) -> bool:
        """Block up to `timeout` seconds until the job has finished; True once it has."""
        done = names.job_done_key(job_id)
        # redis-py types the timeout int; BLMOVE takes fractions of a second (Redis >= 6)
        return self.redis.blmove(done, done, timeout, src="RIGHT", dest="LEFT") is not None  # type: ignore[arg-type]

    # -- read by both
    def status(self, job_id: str) -> JobStatus | None:
        raw = self.redis.hgetall(names.job_key(job_id))
        if not raw:
            return None
        fields = {text(k): text(v) for k, v in raw.items()}
        request = fields.pop("request", None)
        return JobStatus.model_validate(
            {**fields, "job_id": job_id, "request": JobRequest.model_validate_json(request) if request else None}
        )

    def images(self, job_id: str) -> list[ImageRecord]:
        raw = self.redis.hgetall(names.job_images_key(job_id))
        return sorted((ImageRecord.model_validate_json(v) for v in raw.values()), key=lambda r: r.index)

    def png(self, job_id: str, index: int) -> bytes | None:
        png = self.redis.get(names.image_png_key(job_id, index))
        return None if png is None else data(png)

    def preview(self, job_id: str, index: int) -> tuple[int, bytes] | None:
        """(step, JPEG bytes) of the item's latest preview; None before the first or once its image is stored."""
        step, jpeg = self.redis.hmget(names.preview_key(job_id, index), ["step", "jpeg"])
        return None if step is None or jpeg is None else (int(step), data(jpeg))

    def plot_job_ids(self, plot_id: str) -> list[str]:
        return [text(j) for j in self.redis.lrange(names.plot_jobs_key(plot_id), 0, -1)]

    def client_job_ids(self, client_id: str, limit: int = 50) -> list[str]:
        return [text(j) for j in self.redis.lrange(names.client_jobs_key(client_id), 0, limit - 1)]

    def workers(self) -> list[WorkerInfo]:
        """The workers whose heartbeat has not expired, by name (two round trips, whatever the keyspace)."""
        worker_names = sorted(text(n) for n in self.redis.smembers(names.WORKERS_KEY))
        keys = [names.worker_key(n) for n in worker_names]
        values = self.redis.mget(keys) if keys else []
        dead = [n for n, v in zip(worker_names, values, strict=True) if v is None]
        if dead:
            self._forget_dead_workers(keys=[names.WORKERS_KEY, *(names.worker_key(n) for n in dead)], args=dead)
        return [WorkerInfo.model_validate(json.loads(v)) for v in values if v]

    def _set_state_if(self, job_id: str, expected: JobState, new: JobState) -> bool:
        key = names.job_key(job_id)
        with self.redis.pipeline() as p:
            try:
                p.watch(key)
                if p.hget(key, "state") != expected.value.encode():
                    return False
                p.multi()
                p.hset(key, mapping={"state": new.value, "finished_at": time.time()})
                if new.finished:
                    self._signal_finished(p, job_id)
                p.execute()
                return True
            except redis.WatchError:
                return False
