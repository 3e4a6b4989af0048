"""ModelShelf and ModelAffinity in this process, with stand-in engines (no torch): which model is on the device,
what makes room, and which model's queue a worker reads next."""

import pytest

from seedgrid.shared.names import DEFAULT_QUEUE, queue_for_model
from seedgrid.shared.request import JobRequest, RequestError
from seedgrid.shared.workers import ModelOffer
from seedgrid.worker.model_affinity import ModelAffinity
from seedgrid.worker.model_shelf import ModelShelf, ModelSource, ShelfRoom


class NamedEngine:
    def __init__(self, name: str):
        self.model_name, self.device, self.max_batch = name, "cpu", 4
        self.schedulers = ["euler"]
        self.ran: list[str] = []
        self.where = "cpu-device"

    def check(self, request: JobRequest) -> None:
        pass

    def run(self, request, items, on_step, on_batch, on_preview=None) -> None:
        self.ran.append(request.prompts[0])


def shelf(names: list[str], room: ShelfRoom, broken: str = "", park=None) -> tuple[ModelShelf, list[str]]:
    loaded: list[str] = []

    def load(source: ModelSource) -> NamedEngine:
        if source.name == broken:
            raise OSError("no such file")
        loaded.append(source.name)
        return NamedEngine(source.name)

    sources = [ModelSource(n, n, ModelOffer(name=n, schedulers=["euler"], loaded=False), 100) for n in names]
    return ModelShelf(sources, load, "cuda", 4, room, park), loaded


def job(model: str) -> JobRequest:
    return JobRequest(model=model, prompts=[f"for {model}"], seeds=[1], scheduler="euler")


def test_keep_one_loads_each_model_when_its_job_comes_and_unloads_the_other():
    models, loads = shelf(["a", "b"], ShelfRoom(keep=1))
    for model in ["a", "a", "b", "b", "a"]:
        models.run(job(model), [], print, print)
    assert loads == ["a", "b", "a"] and models.loads == 3
    assert list(models.loaded) == ["a"]
    assert [offer.loaded for offer in models.offers()] == [True, False]


def test_keep_two_keeps_both_and_drops_the_least_recently_used_for_a_third():
    models, loads = shelf(["a", "b", "c"], ShelfRoom(keep=2))
    for model in ["a", "b", "a", "c", "a", "b"]:
        models.engine_for(model)
    assert loads == ["a", "b", "c", "b"]  # c pushed out b (used before a), then b pushed out c
    assert list(models.loaded) == ["a", "b"]


def test_a_model_that_does_not_fit_the_free_memory_makes_room_first():
    """The device's free memory is a stand-in figure here (no GPU): 250 bytes free for 100-byte models."""
    room = ShelfRoom()
    models, loads = shelf(["a", "b", "c"], room)
    room.fits = lambda size: 100 * len(models.loaded) + size <= 250
    for model in ["a", "b", "c"]:
        models.engine_for(model)
    assert list(models.loaded) == ["b", "c"] and loads == ["a", "b", "c"]


def test_a_model_moved_off_a_gpu_is_parked_in_cpu_memory_when_ram_allows_and_comes_back_without_a_load():
    moves: list[tuple[str, str]] = []
    models, loads = shelf(
        ["a", "b"],
        ShelfRoom(keep=1, parks=lambda size: True),
        park=lambda engine, device: moves.append((engine.model_name, device)),
    )
    for model in ["a", "b", "a"]:
        models.engine_for(model)
    assert loads == ["a", "b"] and models.loads == 3
    assert moves == [("a", "cpu"), ("b", "cpu"), ("a", "cuda")]
    assert list(models.parked) == ["b"]


def test_unknown_model_and_a_model_that_fails_to_load_are_refused_naming_the_field():
    models, _ = shelf(["a", "b"], ShelfRoom(keep=1), broken="b")
    with pytest.raises(RequestError, match=r"^model: this worker serves 'a', 'b', not 'zz'$"):
        models.check(job("zz"))
    with pytest.raises(RequestError, match=r"^model: the worker could not load 'b': no such file$"):
        models.check(job("b"))
    models.check(job("a"))  # the worker goes on serving the model that loads


def test_two_models_of_one_name_are_refused():
    with pytest.raises(ValueError, match="two models are named a"):
        shelf(["a", "b", "a"], ShelfRoom())


def queues(*models: str) -> list[str]:
    return [DEFAULT_QUEUE, *(queue_for_model(m) for m in models)]


def test_affinity_reads_the_loaded_models_queue_first_then_the_longest_waiting():
    affinity = ModelAffinity(streak=3)
    assert affinity.order(queues("a", "b", "c")) == queues("a", "b", "c")  # nothing ran yet: as configured
    affinity.served("c", ["c"])
    assert affinity.order(queues("a", "b", "c")) == queues("c", "a", "b")
    affinity.served("a", ["c", "a"])  # two fit: both loaded, the most recently used first
    assert affinity.order(queues("a", "b", "c")) == queues("a", "c", "b")


def test_affinity_gives_the_other_models_their_turn_after_the_streak_bound():
    affinity = ModelAffinity(streak=3)
    affinity.served("b", ["b"])
    affinity.served("a", ["a"])
    affinity.served("a", ["a"])
    assert affinity.order(queues("a", "b"))[1] == queue_for_model("a")
    affinity.served("a", ["a"])  # the third turn in a row while b may wait: b's queue comes first
    assert affinity.order(queues("a", "b")) == queues("b", "a")
    affinity.served("b", ["b"])
    assert affinity.order(queues("a", "b")) == queues("b", "a")
