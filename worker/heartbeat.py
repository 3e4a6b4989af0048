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

    def beat(self) -> None:
        with self.redis.pipeline() as p:
            p.set(names.worker_key(self.runtime.name), self.runtime.info().model_dump_json(), ex=HEARTBEAT_TTL)
            p.sadd(names.WORKERS_KEY, self.runtime.name)
            p.execute()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.beat()
            except redis.RedisError as exc:
                log.warning("heartbeat failed: %s", exc)
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
