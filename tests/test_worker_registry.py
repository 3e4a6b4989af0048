"""Workers are found through a registry set, not by scanning the keyspace; expired ones drop out of it."""

import time

from seedgrid.shared import names
from seedgrid.shared.embedded_redis import EmbeddedRedis
from seedgrid.shared.jobstore import JobStore
from seedgrid.shared.redis_conn import connect
from seedgrid.shared.workers import WorkerInfo


def advertise(store: JobStore, name: str, ttl_ms: int) -> None:
    """What a worker's heartbeat writes: its record with an expiry, and its name in the registry."""
    info = WorkerInfo(name=name, host="h", pid=1, model="tiny", device="cpu", schedulers=["euler"], max_batch=8)
    store.redis.set(names.worker_key(name), info.model_dump_json(), px=ttl_ms)
    store.redis.sadd(names.WORKERS_KEY, name)


def test_an_expired_heartbeat_drops_the_worker_from_the_list_and_the_registry():
    with EmbeddedRedis() as server:
        store = JobStore(connect(server.url))
        advertise(store, "b-live", 60_000)
        advertise(store, "a-dying", 200)
        store.redis.set(names.worker_key("not-registered"), "{}")  # a key alone is not a worker
        assert [w.name for w in store.workers()] == ["a-dying", "b-live"]
        time.sleep(0.4)
        assert [w.name for w in store.workers()] == ["b-live"]
        assert store.redis.smembers(names.WORKERS_KEY) == {b"b-live"}
