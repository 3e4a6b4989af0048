"""An idle worker sends again the task of a queued job whose message was lost (see shared/orphans.py)."""

import json
import logging
from collections.abc import Callable

import redis

from seedgrid.shared.orphans import Orphans, index_queued
from seedgrid.worker.runtime import WorkerRuntime

log = logging.getLogger(__name__)

# Sends a job's task again: (job id, request, turn, priority or None for the default).
Send = Callable[[str, dict, int, int | None], None]


class LostMessages:
    def __init__(self, runtime: WorkerRuntime, client: redis.Redis, send: Send):
        self.runtime = runtime
        self.redis = client
        self.orphans = [Orphans(client, model) for model in runtime.model_names]
        self.send = send
        self.suspects: set[str] = set()  # no message at the last scan: sent again if still so at this one

    def scan(self) -> None:
        """Only while this worker is idle, for each model whose queue is empty: then a queued job's message is lost."""
        if self.runtime.busy:
            self.suspects.clear()
            return
        seen: set[str] = set()
        for orphans in self.orphans:
            if orphans.queues_empty():
                seen |= self.scan_model(orphans)
        self.suspects = seen

    def scan_model(self, orphans: Orphans) -> set[str]:
        """Send again the tasks of the model's jobs that had no message at the last scan either; the new suspects."""
        seen = set()
        for job_id in orphans.candidates():
            if orphans.has_message(job_id):
                continue
            if job_id not in self.suspects:
                seen.add(job_id)
                continue
            lost = orphans.lost(job_id)
            if lost is None or not orphans.claim(job_id):
                continue
            request, priority, turn = lost
            index_queued(self.redis, job_id, orphans.model, self.runtime.store.ttl)
            try:
                self.send(job_id, json.loads(request), turn, priority)
            except Exception:
                log.exception("job %s: could not send its lost task again; retried later", job_id)
                continue
            log.warning("job %s: queued with no task message (lost in transit); sent again (turn %d)", job_id, turn)
        return seen
