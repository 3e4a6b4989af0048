"""Which model's queue a worker of several models reads first, so that it does not load a model per job.

kombu's Redis transport pops a worker's queues in the order its queue cycle gives (priority first: every
queue's high-priority list comes before any normal one). AffinityCycle puts the queues of loaded models
first, most recently used first, so queued jobs of a loaded model run before a switch. To keep other
models' jobs from starving, once one model has had `streak` turns in a row (SEEDGRID_MODEL_STREAK,
default 8) its queue goes last until another model's job is taken; a queued job of another model waits at
most that many turns (a turn: one batch, or --turn-images images) of the loaded model.
"""

from kombu.utils.scheduling import priority_cycle

from seedgrid.shared.names import QUEUE_PREFIX


class ModelAffinity:
    def __init__(self, streak: int):
        self.streak_bound = streak
        self.loaded: list[str] = []  # least recently used first
        self.current = ""
        self.streak = 0
        self.turns = 0
        self.last_turn: dict[str, int] = {}  # model -> the turn it last had

    def served(self, model: str, loaded: list[str]) -> None:
        """A turn of `model` ran; `loaded`: the models on the device now, least recently used first."""
        self.turns += 1
        self.streak = self.streak + 1 if model == self.current else 1
        self.current = model
        self.last_turn[model] = self.turns
        self.loaded = list(loaded)

    def order(self, queues: list[str]) -> list[str]:
        def rank(queue: str) -> tuple[int, int]:
            if not queue.startswith(QUEUE_PREFIX):  # the default queue: read first, its tasks refused at once
                return (0, 0)
            model = queue.removeprefix(QUEUE_PREFIX)
            if model == self.current and self.streak >= self.streak_bound:
                return (3, 0)
            if model in self.loaded:
                return (1, -self.loaded.index(model))
            return (2, self.last_turn.get(model, 0))  # the longest waiting first

        return sorted(queues, key=rank)


class AffinityCycle(priority_cycle):
    """kombu's queue cycle (transport option `queue_order_strategy`), ordered by the worker's ModelAffinity."""

    affinity: ModelAffinity | None = None  # set by the worker before it consumes

    def consume(self, n: int) -> list[str]:
        queues = list(self.items[:n])
        return self.affinity.order(queues) if self.affinity else queues


CYCLE_PATH = f"{__name__}:AffinityCycle"
