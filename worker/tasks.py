"""Celery tasks: thin wrappers that hand the job to the runner with the process's engine."""

from celery import Task

from shared.names import TASK_GENERATE
from worker.celery_app import app
from worker.job_runner import run_job
from worker.runtime import WorkerRuntime


class EngineTask(Task):
    """Holds the worker runtime, loaded once per process (see Celery's task-class state)."""

    _runtime: WorkerRuntime | None = None

    @property
    def runtime(self) -> WorkerRuntime:
        if EngineTask._runtime is None:
            EngineTask._runtime = WorkerRuntime.from_env()
        return EngineTask._runtime

    @classmethod
    def install(cls, runtime: WorkerRuntime) -> None:
        cls._runtime = runtime


@app.task(name=TASK_GENERATE, base=EngineTask, bind=True)
def generate(self: EngineTask, job_id: str, request: object) -> dict:
    return run_job(self.runtime, str(job_id), request)
