"""Leases on running jobs: the worker running a job holds an expiring key on it, renewed by a timer.

A job's lease (`names.job_lease_key`) holds the name of the worker running it, its own job or one
taken into its batch; one sorted set (`names.LEASES_KEY`) holds every leased job by the time
its lease runs out. A lapsed lease means the worker is gone: a live worker of the model takes the job
over (once, atomically), marks it queued with the lost worker's name and sends its task again
to the job's model's queue.
"""

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

import redis

from seedgrid.shared import names
from seedgrid.shared.replies import text
from seedgrid.shared.settings import get_settings


def lease_seconds() -> int:
    """How long a lease lasts unrenewed (SEEDGRID_LEASE_SECONDS, default 10)."""
    return get_settings().lease_seconds


def renew_seconds() -> float:
    """How often a worker renews its leases, apart from the GPU loop, and looks for lapsed ones: 3 s at 10."""
    return lease_seconds() * 0.3


SCAN_LIMIT = 20  # lapsed leases taken over per scan

# KEYS: lease, leased set. ARGV: worker, job id, lease ms, expiry (ms since the epoch).
# Renews a lease this worker holds, or one that lapsed but was not taken over yet; 0: it was lost.
RENEW_LUA = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] or (not holder and redis.call('ZSCORE', KEYS[2], ARGV[2])) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[2])
  return 1
end
return 0
"""

# KEYS: leased set, job hash, lease. ARGV: job id, now (ms since the epoch).
# Returns [request JSON, priority, turn, lost worker] to the one caller that takes the job over.
TAKE_OVER_LUA = """
local expiry = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not expiry or tonumber(expiry) > tonumber(ARGV[2]) or redis.call('EXISTS', KEYS[3]) == 1 then
  return false
end
redis.call('ZREM', KEYS[1], ARGV[1])
local state = redis.call('HGET', KEYS[2], 'state')
if not state or state == 'succeeded' or state == 'failed' or state == 'cancelled' then return false end
local lost = redis.call('HGET', KEYS[2], 'worker') or ''
redis.call('HSET', KEYS[2], 'state', 'queued', 'lost_worker', lost, 'worker', '', 'merged_into', '',
           'step', 0, 'batch_size', 0, 'phase', '')
return {redis.call('HGET', KEYS[2], 'request') or '', redis.call('HGET', KEYS[2], 'priority') or '',
        redis.call('HGET', KEYS[2], 'turn') or '0', lost}
"""

# KEYS: leased set, then the lease of each job. ARGV: worker, then the job ids.
RELEASE_LUA = """
for i = 2, #ARGV do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]) end
  redis.call('ZREM', KEYS[1], ARGV[i])
end
return 0
"""


def expiry_ms(now: float | None = None) -> int:
    """When a lease taken or renewed now runs out, as the leased set scores it."""
    return int(((time.time() if now is None else now) + lease_seconds()) * 1000)


@dataclass(frozen=True)
class Takeover:
    job_id: str
    request: str  # the job's request JSON
    priority: int | None
    turn: int
    lost_worker: str


class Leases:
    """The leases of running jobs in Redis."""

    def __init__(self, client: redis.Redis):
        self.redis = client
        self.key = names.LEASES_KEY
        self._renew = client.register_script(RENEW_LUA)
        self._take_over = client.register_script(TAKE_OVER_LUA)
        self._release = client.register_script(RELEASE_LUA)

    def renew(self, job_ids: Iterable[str], worker: str) -> list[str]:
        """Renew this worker's leases; returns the jobs whose lease another worker has taken over."""
        lost = []
        for job_id in job_ids:
            args: list[str | int] = [worker, job_id, lease_seconds() * 1000, expiry_ms()]
            if not self._renew(keys=[names.job_lease_key(job_id), self.key], args=args):
                lost.append(job_id)
        return lost

    def lapsed(self, limit: int = SCAN_LIMIT) -> list[str]:
        """Jobs whose lease ran out, longest lapsed first."""
        now = int(time.time() * 1000)
        # without withscores the answer is members only; redis-py's type also covers (member, score) pairs
        members = cast(list[bytes | str], self.redis.zrangebyscore(self.key, "-inf", now, start=0, num=limit))
        return [text(j) for j in members]

    def take_over(self, job_id: str) -> Takeover | None:
        """Mark a job whose lease lapsed queued again, once: None if it is leased, finished or taken."""
        keys = [self.key, names.job_key(job_id), names.job_lease_key(job_id)]
        answer = self._take_over(keys=keys, args=[job_id, int(time.time() * 1000)])
        if not answer:
            return None
        request, priority, turn, lost = (text(v) for v in answer)
        return Takeover(
            job_id, request, int(priority) if priority.isdigit() else None, int(turn) if turn.isdigit() else 0, lost
        )

    def retry_later(self, job_id: str) -> None:
        """A takeover whose task could not be sent: the next scan takes the (queued) job over again."""
        self.redis.zadd(self.key, {job_id: int(time.time() * 1000)})

    def release(self, job_ids: list[str], worker: str) -> None:
        """Drop this worker's leases on jobs it finished or queued again."""
        if job_ids:
            keys = [self.key, *(names.job_lease_key(j) for j in job_ids)]
            self._release(keys=keys, args=[worker, *job_ids])


class HeldLeases:
    """The jobs this worker holds leases on, shared by the GPU loop and the renewing thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: set[str] = set()

    def add(self, *job_ids: str) -> None:
        with self._lock:
            self._jobs.update(job_ids)

    def discard(self, *job_ids: str) -> None:
        with self._lock:
            self._jobs.difference_update(job_ids)

    def snapshot(self) -> list[str]:
        with self._lock:
            return sorted(self._jobs)
