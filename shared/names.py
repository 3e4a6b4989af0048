"""Task, queue and Redis key names: the one place both sides look them up."""

TASK_GENERATE = "seedgrid.generate"


def worker_command(python: str) -> list[str]:
    """How a `seedgrid worker` child is started. `-P`: files in the current folder cannot replace it."""
    return [python, "-P", "-m", "seedgrid.worker"]


KEY_PREFIX = "seedgrid"
QUEUE_PREFIX = "seedgrid.model."
# Where a task sent without a queue lands; every worker also reads it, and refuses what it finds there.
DEFAULT_QUEUE = "seedgrid.default"


# Job priorities; the Redis transport serves lower numbers first.
PRIORITIES = {"high": 0, "normal": 3, "low": 6}
PRIORITY_SEPARATOR = "\x06\x16"  # kombu's separator between a queue name and its priority


def queue_keys(queue: str) -> list[str]:
    """The Redis lists that hold a queue's messages, one per priority."""
    return [queue] + [f"{queue}{PRIORITY_SEPARATOR}{p}" for p in (3, 6, 9)]


def queue_for_model(model: str) -> str:
    """Each model has its own queue, so a worker only receives jobs it can run."""
    return f"{QUEUE_PREFIX}{model}"


def job_key(job_id: str) -> str:
    """Hash: state, progress, timestamps, error, worker, attempts, request JSON."""
    return f"{KEY_PREFIX}:job:{job_id}"


def job_done_key(job_id: str) -> str:
    """List: gets an element when the job finishes, so clients can block instead of polling."""
    return f"{KEY_PREFIX}:job:{job_id}:done"


def job_turns_key(job_id: str) -> str:
    """Hash: turn number -> deliveries, so a redelivery (a worker died) is told from a first start."""
    return f"{KEY_PREFIX}:job:{job_id}:turns"


def job_images_key(job_id: str) -> str:
    """Hash: item index -> ImageRecord JSON, written once per index."""
    return f"{KEY_PREFIX}:job:{job_id}:images"


def image_png_key(job_id: str, index: int) -> str:
    """String: the PNG bytes of one item."""
    return f"{KEY_PREFIX}:job:{job_id}:png:{index}"


def preview_key(job_id: str, index: int) -> str:
    """Hash {step, jpeg}: the latest live preview of one item, deleted when its image is stored."""
    return f"{KEY_PREFIX}:job:{job_id}:preview:{index}"


def job_merged_key(job_id: str) -> str:
    """Set: the jobs this job took into its GPU batch, given back to the queue if its worker dies."""
    return f"{KEY_PREFIX}:job:{job_id}:merged"


def job_lease_key(job_id: str) -> str:
    """String with expiry: the worker running this job (its own or in another job's batch), renewed by a timer."""
    return f"{KEY_PREFIX}:job:{job_id}:lease"


# Sorted set: every leased job, scored by when its lease runs out (ms since the epoch). One for all models:
# any live worker takes over a lapsed job and sends it to its model's queue.
LEASES_KEY = f"{KEY_PREFIX}:leases"


def queued_key(model: str) -> str:
    """Sorted set: the jobs of a model by when they were last queued (checked for lost messages)."""
    return f"{KEY_PREFIX}:queued:{model}"


# kombu's Redis transport: delivered, unacknowledged messages by delivery tag, and their delivery times.
UNACKED_KEY = "unacked"
UNACKED_INDEX_KEY = "unacked_index"


def merge_pool_key(batch_key: str) -> str:
    """Sorted set: queued small jobs of one batch key, which a worker may take into a compatible batch."""
    return f"{KEY_PREFIX}:pool:{batch_key}"


def cancel_key(job_id: str) -> str:
    return f"{KEY_PREFIX}:job:{job_id}:cancel"


def plot_jobs_key(plot_id: str) -> str:
    """List: the job ids of one plot, in the plot's order (so any client can follow or cancel the plot)."""
    return f"{KEY_PREFIX}:plot:{plot_id}:jobs"


def client_jobs_key(client_id: str) -> str:
    """List: job ids submitted by one client, newest first."""
    return f"{KEY_PREFIX}:client:{client_id}:jobs"


def worker_key(worker_name: str) -> str:
    """String with expiry: a worker's JSON heartbeat."""
    return f"{KEY_PREFIX}:worker:{worker_name}"


# Set: the names of workers that sent a heartbeat; a name whose heartbeat key expired is dropped by readers.
WORKERS_KEY = f"{KEY_PREFIX}:workers"
