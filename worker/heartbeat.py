"""A thread that advertises the worker in Redis with an expiring key, so dead workers drop out."""

import logging
import threading

import redis

from seedgrid.shared import names
from seedgrid.shared.redis_conn import connect
from seedgrid.shared.workers import HEARTBEAT_SECONDS, HEARTBEAT_TTL
from seedgrid.worker.runtime import WorkerRuntime

log = logging.getLogger(__name__)


class Heartbeat(threading.Thread):
    def __init__(self, runtime: WorkerRuntime, redis_url: str):
        super().__init__(name="seedgrid-heartbeat", daemon=True)
        self.runtime = runtime
        self.redis = connect(redis_url)
        self.stopped = threading.Event()
        self.silent = False  # not advertising: the GPU loop is stuck

    def beat(self) -> None:
        with self.redis.pipeline() as p:
            p.set(names.worker_key(self.runtime.name), self.runtime.info().model_dump_json(), ex=HEARTBEAT_TTL)
            p.sadd(names.WORKERS_KEY, self.runtime.name)
            p.execute()

    def tick(self) -> None:
        """Advertise the worker, unless its GPU loop is stuck: then it drops out of the list until it moves."""
        if self.runtime.stuck():
            if not self.silent:
                log.error("job %s: no progress for too long; not advertising this worker", self.runtime.current_job)
            self.silent = True
            return
        self.silent = False
        try:
            self.beat()
        except redis.RedisError as exc:
            log.warning("heartbeat failed: %s", exc)

    def run(self) -> None:
        while not self.stopped.is_set():
            self.tick()
            self.stopped.wait(HEARTBEAT_SECONDS)

    def stop(self) -> None:
        self.stopped.set()
        try:
            with self.redis.pipeline() as p:
                p.delete(names.worker_key(self.runtime.name))
                p.srem(names.WORKERS_KEY, self.runtime.name)
                p.execute()
        except redis.RedisError:
            pass
