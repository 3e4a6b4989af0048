"""Submit a seedgrid job with plain Celery and Redis, as docs/contract.md describes, and save its images.

It imports only `celery` and `redis`: what a tool that does not use seedgrid's Python client does.
The job shows in `seedgrid jobs` (for --client-id), reports progress, and may share a GPU batch
with other clients' jobs of the same settings.

    python examples/raw_celery.py --redis redis://:PASSWORD@HOST:6379/0 --out out \\
        --client-id me@laptop --seeds 0 1 2 "a lighthouse at dusk"

The Redis URL comes from --redis or $SEEDGRID_REDIS_URL. It prints progress to stderr and, at the
end, one JSON line to stdout: {"job_id", "state", "error", "images"}.
"""

import argparse
import hashlib
import json
import os
import socket
import sys
import time
import uuid
from pathlib import Path

import redis
from celery import Celery

TASK = "seedgrid.generate"
PRIORITIES = {"high": 0, "normal": 3, "low": 6}
RESULT_TTL = 24 * 3600  # the workers' SEEDGRID_RESULT_TTL
MERGEABLE_MAX_IMAGES = 8
FINISHED = ("succeeded", "failed", "cancelled")
DEFAULTS = {
    "model": "tiny",
    "negative_prompt": "",
    "width": 512,
    "height": 512,
    "steps": 20,
    "guidance": 7.5,
    "scheduler": "dpm++_2m",
}


def make_request(prompts: list[str], seeds: list[int], **settings) -> dict:
    """Every field written out, so the batch key below sees the values the worker will use."""
    request = {**DEFAULTS, "prompts": prompts, "seeds": seeds, **settings}
    request["guidance"] = float(request["guidance"])
    return request


def batch_key(request: dict) -> str:
    """Jobs with equal keys may share a GPU batch. repr(float) is Python's shortest round-trip form ("7.0")."""
    shared = "|".join(
        [
            request["model"],
            f"{request['width']}x{request['height']}",
            str(request["steps"]),
            request["scheduler"],
            repr(float(request["guidance"])),
        ]
    )
    return hashlib.sha256(shared.encode()).hexdigest()[:20]


def write_record(
    r: redis.Redis, job_id: str, request: dict, client_id: str, priority: int, ttl: int = RESULT_TTL
) -> None:
    """The job hash, the merge pool and queued-jobs entries and the client's index, in one transaction,
    before the task."""
    now = time.time()
    images = len(request["prompts"]) * len(request["seeds"])
    job = f"seedgrid:job:{job_id}"
    index = f"seedgrid:client:{client_id}:jobs"
    with r.pipeline() as p:
        p.hset(
            job,
            mapping={
                "state": "queued",
                "request": json.dumps(request),
                "client_id": client_id,
                "images_total": images,
                "steps": request["steps"],
                "priority": priority,
                "submitted_at": now,
            },
        )
        p.expire(job, ttl)
        if images <= MERGEABLE_MAX_IMAGES:
            pool = f"seedgrid:pool:{batch_key(request)}"
            p.zadd(pool, {job_id: priority * 1e13 + now * 1000})
            p.expire(pool, ttl)
        queued = f"seedgrid:queued:{request['model']}"
        p.zadd(queued, {job_id: now})
        p.expire(queued, ttl)
        p.lpush(index, job_id)
        p.ltrim(index, 0, 999)
        p.expire(index, ttl)
        p.execute()


def served(r: redis.Redis, model: str) -> list[str]:
    """The schedulers of `model` as an online worker advertises them; [] when no worker serves it."""
    for name in sorted(r.smembers("seedgrid:workers")):
        beat = r.get(f"seedgrid:worker:{name.decode()}")
        if beat and json.loads(beat)["model"] == model:
            return json.loads(beat)["schedulers"]
    return []


def submit(r: redis.Redis, app: Celery, request: dict, client_id: str, priority: str = "normal") -> str:
    job_id = uuid.uuid4().hex
    write_record(r, job_id, request, client_id, PRIORITIES[priority])
    app.send_task(
        TASK,
        args=[job_id, request],
        task_id=job_id,
        queue=f"seedgrid.model.{request['model']}",  # never Celery's default queue
        priority=PRIORITIES[priority],  # Celery's default (none) would queue it as high
    )
    return job_id


def wait(r: redis.Redis, job_id: str, timeout: float) -> dict[str, str]:
    """The job hash once the job has finished, printing its progress on the way."""
    job, done = f"seedgrid:job:{job_id}", f"seedgrid:job:{job_id}:done"
    deadline = time.monotonic() + timeout
    while True:
        fields = {k.decode(): v.decode() for k, v in r.hgetall(job).items() if k != b"request"}
        if not fields:
            raise KeyError(f"job {job_id} has no record (expired?)")
        total, steps = int(fields.get("images_total", 0)), int(fields.get("steps", 0))
        made = int(fields.get("images_done", 0)) * steps + int(fields.get("batch_size", 0)) * int(fields.get("step", 0))
        progress = made / (total * steps) if total and steps else 0.0
        print(f"{job_id[:8]} {fields['state']:9} {progress:4.0%}", file=sys.stderr)
        if fields["state"] in FINISHED:
            return fields
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {fields['state']} after {timeout} s")
        r.blmove(done, done, 0.5, src="RIGHT", dest="LEFT")  # returns at once when the job finishes


def save_images(r: redis.Redis, job_id: str, out: Path) -> list[str]:
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    records = [json.loads(v) for v in r.hgetall(f"seedgrid:job:{job_id}:images").values()]
    for record in sorted(records, key=lambda rec: rec["index"]):
        png = r.get(f"seedgrid:job:{job_id}:png:{record['index']}")
        path = out / f"{job_id[:8]}-r{record['row']}-seed{record['seed']}.png"
        path.write_bytes(png)
        paths.append(str(path))
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("prompts", nargs="+")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--redis", default=os.environ.get("SEEDGRID_REDIS_URL"))
    parser.add_argument("--client-id", default=f"raw-celery@{socket.gethostname()}")
    parser.add_argument("--priority", choices=list(PRIORITIES), default="normal")
    parser.add_argument("--out", type=Path, default=Path("out"))
    parser.add_argument("--timeout", type=float, default=600)
    for name, default in DEFAULTS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default)
    args = parser.parse_args(argv)
    if not args.redis:
        parser.error("give --redis URL or set SEEDGRID_REDIS_URL")
    settings = {name: getattr(args, name) for name in DEFAULTS}
    request = make_request(args.prompts, args.seeds, **settings)

    r = redis.Redis.from_url(args.redis, socket_timeout=10)
    app = Celery(broker=args.redis)
    app.conf.update(task_serializer="json", broker_transport_options={"priority_steps": [0, 3, 6, 9]})
    if request["scheduler"] not in served(r, request["model"]):
        print(f"no online worker serves {request['model']!r} with {request['scheduler']!r}", file=sys.stderr)
        return 2
    job_id = submit(r, app, request, args.client_id, args.priority)
    fields = wait(r, job_id, args.timeout)
    images = save_images(r, job_id, args.out) if fields["state"] == "succeeded" else []
    print(json.dumps({"job_id": job_id, "state": fields["state"], "error": fields.get("error", ""), "images": images}))
    app.close()
    r.close()
    return 0 if fields["state"] == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
