"""LoRAs: the worker's allow-list of LoRA files, and putting a job's LoRAs at their weights on the pipeline.

Only `*.safetensors` files directly in the worker's LoRA folder are ever loaded, by name; a request names
a LoRA, never a path. LoRAs load as diffusers adapters into the pipeline's modules (they stay loaded,
least recently used ones dropped beyond a limit) and each batch switches the requested ones on.
"""

import itertools
import logging
import math
import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

log = logging.getLogger(__name__)

LORA_SUFFIX = ".safetensors"
LORA_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}")
DEFAULT_MAX_LOADED = 8

_adapter_numbers = itertools.count(1)  # adapter names stay unique across appliers sharing modules


class LoraLibrary:
    """The LoRAs this worker may load: the stems of the `*.safetensors` files directly in `folder` (None: none).

    A link placed in the folder is followed: whoever can write there chose it."""

    def __init__(self, folder: Path | None):
        if folder is not None and not folder.is_dir():
            raise ValueError(f"loras: {folder} is not a folder")
        self.folder = folder
        self._files: dict[str, Path] = {}
        self._warned: set[str] = set()
        self.refresh()

    def refresh(self) -> None:
        """Read the folder again: files added since are served, removed ones no longer."""
        files: dict[str, Path] = {}
        for entry in self._entries():
            name = entry.name[: -len(LORA_SUFFIX)]
            if LORA_NAME.fullmatch(name):
                files[name] = entry
            elif entry.name not in self._warned:
                self._warned.add(entry.name)
                log.warning("loras: skipping %r: a LoRA's name must match %s", entry.name, LORA_NAME.pattern)
        self._files = dict(sorted(files.items()))

    def _entries(self) -> list[Path]:
        if self.folder is None:
            return []
        try:
            return [entry for entry in self.folder.iterdir() if entry.name.endswith(LORA_SUFFIX) and entry.is_file()]
        except OSError as error:
            log.warning("loras: cannot read %s (%s); serving no LoRAs", self.folder, error)
            return []

    def names(self) -> list[str]:
        return list(self._files)

    def path(self, name: str) -> Path:
        """The file of LoRA `name`; an unknown name (or one whose file is gone) is refused (ValueError)."""
        known = self._files.get(name) if isinstance(name, str) else None
        if known is None or not known.is_file():
            if isinstance(name, str) and LORA_NAME.fullmatch(name):
                self.refresh()  # it may have been dropped in since
                known = self._files.get(name)
            if known is None:
                raise ValueError(f"loras: {str(name)[:120]!r} is not allowed on this worker")
        return known


@dataclass
class _Adapter:
    name: str  # the adapter's name in diffusers/peft: LoRA names may hold characters module names cannot
    stamp: tuple[int, int]  # the file's modification time and size when loaded: a changed file loads again


class _Wanted(NamedTuple):
    name: str
    path: Path
    stamp: tuple[int, int]
    weight: float


@dataclass
class _ModuleState:
    """What is loaded into one denoiser (and the text encoders next to it), least recently used first."""

    loaded: OrderedDict[str, _Adapter] = field(default_factory=OrderedDict)
    enabled: bool = True  # whether the adapter layers are on (disable_lora turns them all off)


class LoraApplier:
    """Makes a job's LoRAs active on a pipeline. Its bookkeeping follows the denoiser module, so a fresh
    pipeline object over the same components (the engine's per-job pipeline) finds the LoRAs loaded."""

    def __init__(self, library: LoraLibrary, max_loaded: int = DEFAULT_MAX_LOADED):
        if max_loaded < 1:
            raise ValueError("loras: max_loaded must be at least 1")
        self.library = library
        self.max_loaded = max_loaded
        self._states: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def apply(self, pipeline: "DiffusionPipeline", loras: Sequence[tuple[str, float]]) -> None:
        """Exactly `loras` (name, weight) active on `pipeline`; [] turns LoRAs off. Refused (ValueError, "loras:
        ..."): names not allowed, weights not finite, too many, a file that does not fit the model (loaded
        ones stay usable), and LoRAs on a compiled model or fused attention projections."""
        wanted = self._checked(loras)
        with self._lock:
            state = self._state_of(pipeline)
            if not wanted:
                if state.loaded and state.enabled:
                    pipeline.disable_lora()
                state.enabled = False
                return
            speedup = _speedup_in_the_way(pipeline)
            if speedup:
                raise ValueError(f"loras: not with the {speedup}")
            missing = [lora for lora in wanted if not _is_current(state, lora)]
            self._evict(pipeline, state, {lora.name for lora in wanted}, [lora.name for lora in missing])
            for lora in missing:
                self._load(pipeline, state, lora)
            for lora in wanted:
                state.loaded.move_to_end(lora.name)
            adapters = [state.loaded[lora.name].name for lora in wanted]
            pipeline.set_adapters(adapters, adapter_weights=[lora.weight for lora in wanted])
            if not state.enabled:
                pipeline.enable_lora()
                state.enabled = True

    def loaded(self, pipeline: "DiffusionPipeline") -> list[str]:
        """The LoRAs loaded into `pipeline`'s modules, least recently used first."""
        with self._lock:
            return list(self._state_of(pipeline).loaded)

    def _checked(self, loras: Sequence[tuple[str, float]]) -> list[_Wanted]:
        names = [name for name, _ in loras]
        doubled = sorted({name for name in names if names.count(name) > 1})
        if doubled:
            raise ValueError(f"loras: {', '.join(doubled)} named more than once")
        if len(loras) > self.max_loaded:
            raise ValueError(f"loras: at most {self.max_loaded} at once on this worker")
        wanted = []
        for name, weight in loras:
            path = self.library.path(name)
            if not math.isfinite(weight):
                raise ValueError(f"loras: the weight of {name} is not a finite number")
            try:
                stat = path.stat()
            except OSError as error:
                raise ValueError(f"loras: {name} cannot be read ({error})") from error
            wanted.append(_Wanted(name, path, (stat.st_mtime_ns, stat.st_size), float(weight)))
        return wanted

    def _state_of(self, pipeline: "DiffusionPipeline") -> _ModuleState:
        denoiser = _denoiser(pipeline)
        state = self._states.get(denoiser)
        if state is None:
            _freeze(pipeline)
            state = self._states[denoiser] = _ModuleState()
        return state

    def _evict(self, pipeline: "DiffusionPipeline", state: _ModuleState, wanted: set[str], missing: list[str]) -> None:
        """Delete the stale versions of `missing` LoRAs, and the least recently used others until they fit."""
        stale = [name for name in missing if name in state.loaded]
        spare = [name for name in state.loaded if name not in wanted]
        excess = len(state.loaded) - len(stale) + len(missing) - self.max_loaded
        for name in stale + spare[: max(excess, 0)]:
            adapter = state.loaded.pop(name)
            log.info("loras: unloading %s", name)
            pipeline.delete_adapters([adapter.name])

    def _load(self, pipeline: "DiffusionPipeline", state: _ModuleState, lora: _Wanted) -> None:
        name, path = lora.name, lora.path
        adapter = _Adapter(f"{re.sub(r'[^A-Za-z0-9_]', '_', name)}_{next(_adapter_numbers)}", lora.stamp)
        try:
            pipeline.load_lora_weights(
                str(path), weight_name=path.name, adapter_name=adapter.name, use_safetensors=True, local_files_only=True
            )
            if not _has_adapter(pipeline, adapter.name):
                raise ValueError("none of its layers are in this model")
        except Exception as error:
            if _has_adapter(pipeline, adapter.name):
                pipeline.delete_adapters([adapter.name])
            reason = " ".join(str(error).split())  # torch lists every mismatched layer
            raise ValueError(f"loras: {name} does not fit this model ({reason[:200]})") from error
        log.info("loras: loaded %s", name)
        state.loaded[name] = adapter


def _freeze(pipeline: "DiffusionPipeline") -> None:
    """Loading a LoRA freezes the model's weights (peft does), and on the CPU torch computes half-precision
    layers of frozen weights slightly differently; frozen from the first batch on, images never shift."""
    import torch

    for module in pipeline.components.values():
        if isinstance(module, torch.nn.Module):
            module.requires_grad_(False)


def _denoiser(pipeline: "DiffusionPipeline"):
    from seedgrid.worker.families import family_of

    return family_of(pipeline).denoiser(pipeline)


def _speedup_in_the_way(pipeline: "DiffusionPipeline") -> str | None:
    denoiser = _denoiser(pipeline)
    if hasattr(denoiser, "_orig_mod"):
        return "compile speedup: diffusers finds none of a LoRA's layers in a compiled model"
    if any(getattr(module, "fused_projections", False) for module in denoiser.modules()):
        return "fuse_qkv speedup: the fused projections would bypass the LoRA's"
    return None


def _has_adapter(pipeline: "DiffusionPipeline", adapter: str) -> bool:
    return any(adapter in names for names in pipeline.get_list_adapters().values())


def _is_current(state: _ModuleState, lora: _Wanted) -> bool:
    adapter = state.loaded.get(lora.name)
    return adapter is not None and adapter.stamp == lora.stamp
