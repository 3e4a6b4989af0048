"""Celery tasks: thin wrappers that hand the job to the runner with the process's engine."""

from celery import Task
from celery.exceptions import Reject

from seedgrid.shared.names import TASK_GENERATE, queue_for_model
from seedgrid.shared.settings import get_settings
from seedgrid.worker.celery_app import app
from seedgrid.worker.job_runner import run_job
from seedgrid.worker.lease_keeper import LeaseKeeper
from seedgrid.worker.redis_retry import OUTAGE_ERRORS
from seedgrid.worker.runtime import WorkerRuntime


class EngineTask(Task):
    """Holds the worker runtime, loaded once per process (see Celery's task-class state)."""

    _runtime: WorkerRuntime | None = None

    @property
    def runtime(self) -> WorkerRuntime:
        if EngineTask._runtime is None:
            runtime = WorkerRuntime.from_env()
            # A worker started with plain `celery worker` renews its leases too, or its jobs would be taken over.
            LeaseKeeper(runtime, get_settings().redis_url or "", send_generate).start()
            EngineTask._runtime = runtime
        return EngineTask._runtime

    @classmethod
    def install(cls, runtime: WorkerRuntime) -> None:
        cls._runtime = runtime


def send_generate(
    job_id: str,
    request: object,
    turn: int = 0,
    priority: int | None = None,
    queue: str | None = None,
    task_id: str | None = None,
    handed_over: bool = False,
) -> None:
    """Send a job's task (again): to `queue`, else its model's queue, at `priority` (None: the default)."""
    model = request.get("model", "") if isinstance(request, dict) else ""  # a dict: run_job parsed it
    app.send_task(
        TASK_GENERATE,
        args=[job_id, request],
        kwargs={"turn": turn, **({"handed_over": True} if handed_over else {})},
        queue=queue or queue_for_model(str(model)),
        priority=priority,
        task_id=task_id,
    )


# ignore_result: clients read the job record; a Celery result nobody reads would only cost a write and memory.
@app.task(name=TASK_GENERATE, base=EngineTask, bind=True, ignore_result=True)
def generate(self: EngineTask, job_id: str, request: object, turn: int = 0, handed_over: bool = False) -> dict:
    job_id = str(job_id)
    delivery = self.request.delivery_info or {}

    def requeue(next_turn: int) -> None:
        """The rest of a large job goes to the back of its queue, at the priority it came with."""
        send_generate(job_id, request, next_turn, delivery.get("priority"), delivery.get("routing_key"))

    def hand_over() -> None:
        """To the same queue at the same priority, under the job's id; the worker that takes it runs it."""
        priority, queue = delivery.get("priority"), delivery.get("routing_key")
        send_generate(job_id, request, turn, priority, queue, task_id=job_id, handed_over=True)

    def resend(other_id: str, other_request: dict, priority: int | None) -> None:
        """A job merged into this one's batch on a worker that died goes back to its model's queue."""
        send_generate(other_id, other_request, 0, priority, task_id=other_id)

    model = request.get("model") if isinstance(request, dict) else None
    ran = isinstance(model, str)  # a turn of `model` ran here (for the order the worker reads its queues in)
    try:
        result = run_job(
            self.runtime,
            job_id,
            request,
            turn=int(turn) if isinstance(turn, int) else 0,
            requeue=requeue,
            resend=resend,
            queue=str(delivery.get("routing_key") or ""),
            hand_over=None if handed_over else hand_over,
        )
        ran = ran and "handed_to" not in result
        return result
    except OUTAGE_ERRORS as exc:
        # Redis stayed away longer than the runner waits: the delivery is not acknowledged but put back
        # (or, if Redis is still away, left to the visibility timeout), and the job's lease lapses.
        raise Reject(f"Redis unreachable: {exc}", requeue=True) from exc
    finally:
        if ran and isinstance(model, str):
            self.runtime.turn_ran(model)
