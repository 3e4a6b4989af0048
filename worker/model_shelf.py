"""Several models per worker: each loaded when a job first needs it, kept while it fits, the least recently
used one parked in CPU memory (on a GPU, when RAM allows) or dropped when another needs the room."""

import gc
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from seedgrid.shared.request import JobRequest, RequestError
from seedgrid.shared.workers import ModelOffer, allowed_loras_rule
from seedgrid.worker.engine_api import BatchCallback, Engine, ItemT, PreviewCallback, StepCallback

log = logging.getLogger(__name__)


@dataclass
class ModelSource:
    """A model a worker may serve: its advertised name, what the loader takes, and its offer before it loads."""

    name: str
    spec: str  # a built-in name, a hub id, a diffusers folder or a .safetensors file
    offer: ModelOffer  # exact once the model has loaded; until then its family's defaults
    size_bytes: int = 0  # on disk (0: unknown); what loading it will take, roughly


@dataclass
class ShelfRoom:
    """Whether one more model fits next to the loaded ones (`fits(bytes)`), and whether a model moved off the
    device may be parked in CPU memory (`parks(bytes)`); `keep` caps the models on the device (0: no cap)."""

    keep: int = 0
    fits: Callable[[int], bool] = lambda _size: True
    parks: Callable[[int], bool] = lambda _size: False


# Loads one source: the engine, and the offer measured on it (schedulers, defaults).
Loader = Callable[[ModelSource], Engine]
Parker = Callable[[Engine, str], None]  # moves an engine's modules to a device ("cpu" to park, back to run)


@dataclass
class ModelShelf:
    """An Engine over several models: a job runs on its model's engine, loaded first when needed."""

    sources: list[ModelSource]
    load: Loader
    device: str
    max_batch: int
    room: ShelfRoom = field(default_factory=ShelfRoom)
    park: Parker | None = None
    release: Callable[[], None] | None = None  # frees what an unloaded model left on the device (torch's caches)
    loaded: "OrderedDict[str, Engine]" = field(default_factory=OrderedDict)  # least recently used first
    parked: "OrderedDict[str, Engine]" = field(default_factory=OrderedDict)
    loads: int = 0  # a model brought onto the device: loaded from its source or moved back from CPU memory
    loras: list[str] = field(default_factory=list)  # the LoRA names this worker may apply (--loras DIR)

    def __post_init__(self) -> None:
        names = [source.name for source in self.sources]
        if not names:
            raise ValueError("models: none to serve")
        if len(set(names)) != len(names):
            twice = sorted({name for name in names if names.count(name) > 1})
            raise ValueError(f"models: two models are named {', '.join(twice)}; rename one file or folder")
        self.by_name = {source.name: source for source in self.sources}

    @property
    def model_name(self) -> str:
        """The first model: the one a worker loads at start, and names in its log."""
        return self.sources[0].name

    @property
    def model_names(self) -> list[str]:
        return [source.name for source in self.sources]

    @property
    def schedulers(self) -> list[str]:
        return self.by_name[self.model_name].offer.schedulers

    def offers(self) -> list[ModelOffer]:
        return [source.offer.model_copy(update={"loaded": source.name in self.loaded}) for source in self.sources]

    def check(self, request: JobRequest, load: bool = True) -> None:
        """Refuse what this worker cannot serve, naming the field: a model it does not serve, a LoRA it does not
        allow, then what the model's engine refuses, loading the model first. With `load` False a model not on
        the device is not loaded, and its engine's refusals wait for the check that loads it."""
        if request.model not in self.by_name:
            served = ", ".join(repr(name) for name in self.model_names)
            raise RequestError("model", f"this worker serves {served}, not {request.model!r}", rule="")
        for lora in request.loras:
            if lora.name not in self.loras:
                rule = allowed_loras_rule(self.loras)
                raise RequestError("loras", f"{lora.name!r} is not allowed on this worker", rule=rule)
        if load or request.model in self.loaded:
            self.engine_for(request.model).check(request)

    def run(
        self,
        request: JobRequest,
        items: Sequence[ItemT],
        on_step: StepCallback[ItemT],
        on_batch: BatchCallback[ItemT],
        on_preview: PreviewCallback[ItemT] | None = None,
    ) -> None:
        self.engine_for(request.model).run(request, items, on_step, on_batch, on_preview)

    def engine_for(self, name: str) -> Engine:
        """The model's engine on the device, loading it (and making room) first when needed."""
        if name in self.loaded:
            self.loaded.move_to_end(name)
            return self.loaded[name]
        source = self.by_name[name]
        self._make_room(source.size_bytes)
        if name in self.parked:
            engine = self.parked.pop(name)
            if self.park is not None:
                self.park(engine, self.device)
            log.info("model %s moved back from CPU memory", name)
        else:
            log.info("loading model %s (%s)", name, source.spec)
            try:
                engine = self.load(source)
            except (ValueError, OSError) as exc:
                raise RequestError("model", f"the worker could not load {name!r}: {exc}", rule="") from exc
            source.offer = offer_of(engine, source.offer)
        self.loaded[name] = engine
        self.loads += 1
        return engine

    def _make_room(self, size_bytes: int) -> None:
        while self.loaded and (
            (self.room.keep and len(self.loaded) >= self.room.keep) or not self.room.fits(size_bytes)
        ):
            name, engine = self.loaded.popitem(last=False)
            source = self.by_name[name]
            if self.park is not None and self.device != "cpu" and self.room.parks(source.size_bytes):
                self.park(engine, "cpu")
                self.parked[name] = engine
                log.info("model %s parked in CPU memory to make room", name)
            else:
                log.info("model %s unloaded to make room", name)
            del engine
            gc.collect()
            if self.release is not None:
                self.release()


def offer_of(engine: Engine, before: ModelOffer) -> ModelOffer:
    """What a loaded engine serves: its schedulers and its family's defaults (the simulated model: `before`'s)."""
    family_info = getattr(engine, "family_info", None)
    takes = family_info() if family_info else {}
    model_hash = getattr(engine, "model_hash", "")
    return before.model_copy(update={"schedulers": list(engine.schedulers), "model_hash": model_hash, **takes})
