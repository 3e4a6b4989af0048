"""A thread that renews the leases of the jobs this worker runs and takes over jobs whose lease lapsed.

It runs apart from the GPU loop, on its own Redis connection with timeouts, so a long batch, decode
or compile never lets a lease lapse, and a worker that is busy still rescues a dead worker's job:
the job is sent again to its model's queue, where the first free worker resumes it.
"""

import json
import logging
import threading
import time

import redis

from seedgrid.shared.leases import Leases, renew_seconds
from seedgrid.shared.orphans import index_queued
from seedgrid.shared.redis_conn import connect
from seedgrid.shared.settings import get_settings
from seedgrid.worker.lost_messages import LostMessages, Send
from seedgrid.worker.runtime import WorkerRuntime

log = logging.getLogger(__name__)


class LeaseKeeper(threading.Thread):
    def __init__(self, runtime: WorkerRuntime, redis_url: str, send: Send):
        super().__init__(name="seedgrid-leases", daemon=True)
        self.runtime = runtime
        self.redis = connect(redis_url)
        self.leases = Leases(self.redis)
        self.send = send
        self.lost_messages = LostMessages(runtime, self.redis, send)
        self.stopped = threading.Event()

    def renew(self) -> None:
        if self.runtime.stuck():  # the leases lapse and live workers take the jobs over
            return
        for job_id in self.leases.renew(self.runtime.held.snapshot(), self.runtime.name):
            log.warning("job %s: its lease lapsed and another worker took it over", job_id)
            self.runtime.held.discard(job_id)

    def take_over_lapsed(self) -> None:
        if not get_settings().lease_takeover:  # SEEDGRID_LEASE_TAKEOVER=0: only the visibility timeout rescues
            return
        held = set(self.runtime.held.snapshot())
        for job_id in self.leases.lapsed():
            if job_id in held:  # its renewal just failed (Redis away): renewed at the next round, not taken
                continue
            takeover = self.leases.take_over(job_id)
            if takeover is None:
                continue
            try:
                request = json.loads(takeover.request)
                index_queued(self.redis, job_id, str(request.get("model", "")), self.runtime.store.ttl)
                self.send(job_id, request, takeover.turn, takeover.priority)
            except Exception:
                log.exception("job %s: could not send it again; retried at the next scan", job_id)
                self.leases.retry_later(job_id)
                continue
            log.warning(
                "job %s: the lease of worker %s lapsed; queued again (turn %d)",
                job_id,
                takeover.lost_worker or "?",
                takeover.turn,
            )

    def run(self) -> None:
        next_scan = 0.0
        while not self.stopped.is_set():
            try:
                self.renew()
                if time.monotonic() >= next_scan:
                    next_scan = time.monotonic() + renew_seconds()
                    self.take_over_lapsed()
                    self.lost_messages.scan()
            except redis.RedisError as exc:
                log.warning("lease renewal or scan failed: %s", exc)
            self.stopped.wait(renew_seconds())

    def stop(self) -> None:
        self.stopped.set()
