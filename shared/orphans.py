"""Queued jobs whose task message was lost, found and sent again.

kombu's Redis transport pops a message (BRPOP) and then, in a second call, records it as
unacknowledged; if the connection dies between the two (a partition, Redis killed), the message is
gone and its job would stay queued for ever. Every place that queues a job indexes it by model and
time (`index_queued`); an idle worker whose queues are empty looks at jobs queued for longer than
GRACE_SECONDS: one still queued with no message in its queues or among the unacknowledged ones has
lost it, and the first worker to claim it sends it again. A late duplicate is harmless: a finished
or leased job is acknowledged without running.
"""

import time
from typing import cast

import redis

from seedgrid.shared import names
from seedgrid.shared.replies import text

GRACE_SECONDS = 10.0  # far longer than from writing a record or popping a task to the next call
CHECK_LIMIT = 20


def index_queued(pipe, job_id: str, model: str, ttl: int, now: float | None = None) -> None:
    """Record that a job was (queued) just now; `pipe` is a client or a pipeline."""
    key = names.queued_key(model)
    pipe.zadd(key, {job_id: time.time() if now is None else now})
    pipe.expire(key, ttl)


class Orphans:
    def __init__(self, client: redis.Redis, model: str):
        self.redis = client
        self.model = model
        self.key = names.queued_key(model)
        self.queues = [
            *names.queue_keys(names.queue_for_model(model)),
            *names.queue_keys(names.DEFAULT_QUEUE),
        ]

    def queues_empty(self) -> bool:
        with self.redis.pipeline(transaction=False) as p:
            for key in self.queues:
                p.llen(key)
            return not any(p.execute())

    def candidates(self, now: float | None = None) -> list[str]:
        """Jobs queued longer than GRACE_SECONDS ago and still indexed; others leave the index."""
        cutoff = (time.time() if now is None else now) - GRACE_SECONDS
        # without withscores the answer is members only; redis-py's type also covers (member, score) pairs
        found_ids = cast(
            list[bytes | str], self.redis.zrangebyscore(self.key, "-inf", cutoff, start=0, num=CHECK_LIMIT)
        )
        members = [text(m) for m in found_ids]
        found = []
        for job_id in members:
            state = self.redis.hget(names.job_key(job_id), "state")
            if state is None or text(state) != "queued":
                self.redis.zrem(self.key, job_id)  # started, finished or expired since
            else:
                found.append(job_id)
        return found

    def has_message(self, job_id: str, now: float | None = None) -> bool:
        """Is a task of `job_id` waiting in a queue, or delivered in the last GRACE_SECONDS and not yet
        acknowledged? (Its id is in the headers.) One delivered longer ago to a worker that never
        started the job belongs to a worker that died or cannot reach Redis: sent again."""
        marker = job_id.encode()
        for key in self.queues:
            if any(marker in m for m in self.redis.lrange(key, 0, -1)):
                return True
        since = (time.time() if now is None else now) - GRACE_SECONDS
        tags = cast(list[bytes | str], self.redis.zrangebyscore(names.UNACKED_INDEX_KEY, since, "+inf"))
        return bool(tags) and any(m and marker in m for m in self.redis.hmget(names.UNACKED_KEY, tags))

    def lost(self, job_id: str) -> tuple[str, int | None, int] | None:
        """(request JSON, priority, turn) of a queued job, to send again; None once it is not queued."""
        state, request, priority, turn = (
            text(v) if v is not None else ""
            for v in self.redis.hmget(names.job_key(job_id), "state", "request", "priority", "turn")
        )
        if state != "queued" or not request:
            return None
        return request, int(priority) if priority.isdigit() else None, int(turn) if turn.isdigit() else 0

    def claim(self, job_id: str) -> bool:
        """One worker sends a lost message again: the one whose ZREM removed it (re-indexed once sent)."""
        return bool(self.redis.zrem(self.key, job_id))
