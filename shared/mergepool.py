"""Dynamic batching: small queued jobs a worker may take into the GPU batch of the job it runs.

A job of at most MERGEABLE_MAX_IMAGES images also enters the pool of its batch key (model,
size, steps, scheduler, guidance) when it is queued. A worker running a compatible job with
room left in its batch *claims* pool jobs atomically; the claimed jobs' own Celery messages,
when they arrive, find the job finished or still held by a live claim and are acknowledged
without running. The claiming (host) job remembers what it took: if its worker dies, the
host's redelivery gives every unfinished claimed job back to the queue.
"""

import time
from typing import cast

import redis

from seedgrid.shared import names
from seedgrid.shared.leases import expiry_ms, lease_seconds
from seedgrid.shared.replies import text
from seedgrid.shared.request import JobRequest

MERGEABLE_MAX_IMAGES = 8
# How long a claimed job's own delivery trusts the claim without a sign of life from its worker.
# Pool entries a claim looks at, per image of room.
SCAN_PER_IMAGE = 4

# KEYS: pool, host job hash, host merged set, leased set, then (job hash, cancel key, lease key) per candidate.
# ARGV: room, worker, host id, lease ms, now, ttl, lease expiry (ms), then the candidate ids.
# Returns [id, request JSON, priority, ...] for each job claimed, oldest of the best priority first.
CLAIM_LUA = """
local room = tonumber(ARGV[1])
local claimed = {}
local count = 0
for i = 8, #ARGV do
  local base = 4 + 3 * (i - 8)
  local job, cancel, lease = KEYS[base + 1], KEYS[base + 2], KEYS[base + 3]
  local state = redis.call('HGET', job, 'state')
  local done = tonumber(redis.call('HGET', job, 'images_done') or '0')
  if state ~= 'queued' or done > 0 or redis.call('EXISTS', cancel) == 1 then
    redis.call('ZREM', KEYS[1], ARGV[i])
  else
    local total = tonumber(redis.call('HGET', job, 'images_total') or '0')
    if total > 0 and total <= room then
      room = room - total
      count = count + 1
      redis.call('HSET', job, 'state', 'started', 'worker', ARGV[2], 'merged_into', ARGV[3],
                 'step', 0, 'batch_size', 0, 'error', '')
      redis.call('HSETNX', job, 'started_at', ARGV[5])
      redis.call('HSETNX', job, 'attempts', 1)
      redis.call('SET', lease, ARGV[2], 'PX', ARGV[4])
      redis.call('ZADD', KEYS[4], ARGV[7], ARGV[i])
      redis.call('ZREM', KEYS[1], ARGV[i])
      redis.call('SADD', KEYS[3], ARGV[i])
      claimed[#claimed + 1] = ARGV[i]
      claimed[#claimed + 1] = redis.call('HGET', job, 'request')
      claimed[#claimed + 1] = redis.call('HGET', job, 'priority') or ''
    end
  end
  if room <= 0 then break end
end
if count > 0 then
  redis.call('HINCRBY', KEYS[2], 'merged_jobs', count)
  redis.call('EXPIRE', KEYS[3], ARGV[6])
end
return claimed
"""

# KEYS: job hash, lease key, pool, leased set. ARGV: job id, worker, turn, lease ms, lease expiry (ms).
# 0: another live worker runs this job (its own delivery, or inside another job's batch), or the job was
# taken over from a lost worker and has moved past this turn (the lost worker's message, late);
# 1: this delivery runs it, and holds its lease (also when a retried call finds its own lease).
START_OWN_LUA = """
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[2] then return 0 end
local recorded = tonumber(redis.call('HGET', KEYS[1], 'turn') or '0') or 0
local lost = redis.call('HGET', KEYS[1], 'lost_worker')
if lost and lost ~= '' and tonumber(ARGV[3]) < recorded then return 0 end
redis.call('HSET', KEYS[1], 'state', 'started', 'worker', ARGV[2], 'merged_into', '', 'turn', ARGV[3])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[4])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
"""

# KEYS: host job hash, host merged set, then (job hash, lease key) per member, then the leased set.
# ARGV: host id, member ids.
# Returns [id, request JSON, priority, ...] for each unfinished member taken back from the host.
RELEASE_LUA = """
local given = {}
for i = 2, #ARGV do
  local job, lease = KEYS[2 * i - 1], KEYS[2 * i]
  local state = redis.call('HGET', job, 'state')
  local finished = state == 'succeeded' or state == 'failed' or state == 'cancelled'
  if state and not finished and redis.call('HGET', job, 'merged_into') == ARGV[1] then
    redis.call('HSET', job, 'state', 'queued', 'merged_into', '', 'worker', '', 'step', 0, 'batch_size', 0,
               'phase', '')
    redis.call('DEL', lease)
    redis.call('ZREM', KEYS[#KEYS], ARGV[i])
    given[#given + 1] = ARGV[i]
    given[#given + 1] = redis.call('HGET', job, 'request')
    given[#given + 1] = redis.call('HGET', job, 'priority') or ''
  end
end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'merged_jobs', 0)
return given
"""


def pool_score(priority: int, submitted_at: float) -> float:
    """Better priority first (lower number), then oldest first, as the Celery queue serves them."""
    return priority * 1e13 + submitted_at * 1000


def add_to_pool(pipe, job_id: str, request: JobRequest, priority: int, submitted_at: float, ttl: int) -> None:
    if len(request.prompts) * len(request.seeds) > MERGEABLE_MAX_IMAGES:
        return
    key = names.merge_pool_key(request.batch_key())
    pipe.zadd(key, {job_id: pool_score(priority, submitted_at)})
    pipe.expire(key, ttl)


def _triples(flat: list) -> list[tuple[str, str, int | None]]:
    """(job id, request JSON, priority) from a script's flat answer."""
    out = []
    for i in range(0, len(flat), 3):
        priority = flat[i + 2].decode() if flat[i + 2] else ""
        request = flat[i + 1].decode() if flat[i + 1] else ""  # "" fails validation: the job is refused
        out.append((flat[i].decode(), request, int(priority) if priority.isdigit() else None))
    return out


class MergePool:
    def __init__(self, client: redis.Redis, ttl: int):
        self.redis = client
        self.ttl = ttl
        self._claim = client.register_script(CLAIM_LUA)
        self._start_own = client.register_script(START_OWN_LUA)
        self._release = client.register_script(RELEASE_LUA)

    def claim(self, host_id: str, worker: str, request: JobRequest, room: int) -> list[tuple[str, str, int | None]]:
        """Take queued jobs of `request`'s batch key, `room` images at most, into the host's batch."""
        if room <= 0:
            return []
        pool = names.merge_pool_key(request.batch_key())
        # without withscores ZRANGE gives members only; redis-py's type also covers (member, score) pairs
        members = cast(list[bytes | str], self.redis.zrange(pool, 0, room * SCAN_PER_IMAGE))
        candidates = [text(c) for c in members]
        candidates = [c for c in candidates if c != host_id]
        if not candidates:
            return []
        keys = [pool, names.job_key(host_id), names.job_merged_key(host_id), names.LEASES_KEY]
        for job_id in candidates:
            keys += [names.job_key(job_id), names.cancel_key(job_id), names.job_lease_key(job_id)]
        lease_ms = lease_seconds() * 1000
        args: list[str | int | float] = [room, worker, host_id, lease_ms, time.time(), self.ttl, expiry_ms()]
        args += candidates
        claimed = _triples(self._claim(keys=keys, args=args))
        if claimed:  # started now: off the list of queued jobs that idle workers check for lost messages
            self.redis.zrem(names.queued_key(request.model), *(job_id for job_id, _, _ in claimed))
        return claimed

    def start_own(self, job_id: str, worker: str, request: JobRequest, turn: int = 0) -> bool:
        """The job's own delivery takes the job's lease: False while a live worker runs it (a lease holds),
        or for an earlier turn than the one a job taken over from a lost worker has reached."""
        keys = [
            names.job_key(job_id),
            names.job_lease_key(job_id),
            names.merge_pool_key(request.batch_key()),
            names.LEASES_KEY,
        ]
        args: list[str | int] = [job_id, worker, turn, lease_seconds() * 1000, expiry_ms()]
        started = bool(self._start_own(keys=keys, args=args))
        if started:
            self.redis.zrem(names.queued_key(request.model), job_id)
        return started

    def release(self, host_id: str) -> list[tuple[str, str, int | None]]:
        """Give back the unfinished jobs a host took into a batch that never ended (its worker died)."""
        members = [text(m) for m in self.redis.smembers(names.job_merged_key(host_id))]
        keys = [names.job_key(host_id), names.job_merged_key(host_id)]
        for job_id in members:
            keys += [names.job_key(job_id), names.job_lease_key(job_id)]
        keys.append(names.LEASES_KEY)
        return _triples(self._release(keys=keys, args=[host_id, *members]))

    def done(self, host_id: str) -> None:
        """The host's batch ended and every job in it has finished."""
        with self.redis.pipeline() as p:
            p.delete(names.job_merged_key(host_id))
            p.hset(names.job_key(host_id), "merged_jobs", 0)
            p.execute()
