"""X/Y/Z plots: up to three axes over a base request, one image per cell, expanded into few jobs.

Cells that differ only in prompt and seed share a batch key (and a negative prompt), so they
become one job's prompts x seeds; the others become jobs of their own. `placements[i]` says
which job and item index holds `cells[i]`'s image.
"""

from dataclasses import dataclass
from math import prod
from typing import Any

from seedgrid.shared import limits as L
from seedgrid.shared.plot_axes import Axis, parse_axis, value_label
from seedgrid.shared.request import JobRequest, RequestError, parse_request

MAX_CELLS = 1024
AXIS_NAMES = ("x", "y", "z")
TITLES = {
    "seed": "seed",
    "sr": "prompt S/R",
    "negative": "negative prompt",
    "steps": "steps",
    "guidance": "guidance",
    "scheduler": "scheduler",
    "size": "size",
    "model": "model",
    "lora": "LoRA",
}


@dataclass(frozen=True)
class Cell:
    """One image of a plot: its place on each axis and the one-image request that makes it."""

    x: int
    y: int
    z: int
    request: JobRequest

    def settings(self) -> dict[str, Any]:
        r = self.request
        return {
            "prompt": r.prompts[0],
            "negative_prompt": r.negative_prompt,
            "seed": r.seeds[0],
            "steps": r.steps,
            "guidance": r.guidance,
            "scheduler": r.scheduler,
            "width": r.width,
            "height": r.height,
            "model": r.model,
            "loras": [lora.model_dump() for lora in r.loras],
        }


@dataclass(frozen=True)
class Placement:
    job: int  # index into Plot.jobs
    index: int  # the item index of the cell's image in that job


@dataclass(frozen=True)
class Plot:
    base: JobRequest
    axes: tuple[tuple[str, Axis], ...]  # ("x", axis), ("y", axis), ... in order
    cells: tuple[Cell, ...]  # z by z, row (y) by row, x fastest
    jobs: tuple[JobRequest, ...]
    placements: tuple[Placement, ...]  # one per cell

    def axis(self, name: str) -> Axis | None:
        return dict(self.axes).get(name)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(columns, rows, layers): the number of x, y and z values, 1 for an absent axis."""
        sizes = [len(a.values) if (a := self.axis(n)) else 1 for n in AXIS_NAMES]
        return sizes[0], sizes[1], sizes[2]

    def title(self, name: str) -> str:
        axis = self.axis(name)
        return TITLES[axis.setting] if axis else ""

    def labels(self, name: str) -> list[str]:
        axis = self.axis(name)
        return axis.labels() if axis else [""]


def _apply(fields: dict[str, Any], axis: Axis, value: Any) -> None:
    """Set one axis value in a request's fields (S/R replaces its first value by `value`)."""
    if axis.setting == "seed":
        fields["seeds"] = [value]
    elif axis.setting == "negative":
        fields["negative_prompt"] = value
    elif axis.setting == "size":
        fields["width"], fields["height"] = value
    elif axis.setting == "lora":  # the axis's LoRAs out, then this value's in ("none": nothing)
        axis_names = {lora.name for lora in axis.values}
        kept = [lora for lora in fields["loras"] if lora["name"] not in axis_names]
        fields["loras"] = kept + ([value.model_dump()] if value.name else [])
    elif axis.setting == "sr":
        search = axis.values[0]
        fields["prompts"] = [p.replace(search, value) for p in fields["prompts"]]
        fields["negative_prompt"] = fields["negative_prompt"].replace(search, value)
    else:
        fields[axis.setting] = value


def _check_values(base: JobRequest, label: str, axis: Axis) -> None:
    """Every value on the base request, so a bad one is refused naming its axis."""
    if axis.setting == "sr" and not any(axis.values[0] in t for t in [*base.prompts, base.negative_prompt]):
        raise RequestError("axis", f"{axis.values[0]!r} is not in the prompt", label)
    for value in axis.values:
        fields = base.model_dump()
        _apply(fields, axis, value)
        try:
            parse_request(fields)
        except RequestError as exc:
            problem = exc.problem
            if problem.startswith("got "):
                problem = f"{value_label(axis.setting, value)} is out of range"
            raise RequestError(exc.field, problem, label=label) from None


def make_plot(
    base: JobRequest,
    x: str | Axis | None = None,
    y: str | Axis | None = None,
    z: str | Axis | None = None,
    flag: str = "",
) -> Plot:
    """A plot of `base` (one prompt, one seed) over the given axes (specs like `steps=10,20`).

    Raises a RequestError naming the axis as `{flag}x` (the CLI passes `--`)."""
    if len(base.prompts) != 1 or len(base.seeds) != 1:
        raise RequestError(
            "plot",
            f"a plot takes one prompt and one seed, got {len(base.prompts)} x {len(base.seeds)} "
            "(vary them on an axis: sr=... or seed=...)",
            label="prompts x seeds",
        )
    axes: list[tuple[str, Axis]] = []
    for name, spec in zip(AXIS_NAMES, (x, y, z), strict=True):
        if spec is None:
            continue
        axis = spec if isinstance(spec, Axis) else parse_axis(spec, f"{flag}{name}")
        label = f"{flag}{name} {axis.setting}"
        for other, earlier in axes:
            if earlier.setting == axis.setting:
                raise RequestError("axis", f"{flag}{other} already sweeps {axis.setting}", label)
        _check_values(base, label, axis)
        axes.append((name, axis))
    if not axes:
        raise RequestError("axis", f"a plot needs at least one ({flag}x SETTING=VALUES)", "axes")
    count = prod(len(a.values) for _, a in axes)
    if count > MAX_CELLS:
        sizes = " x ".join(f"{flag}{n} {a.setting} ({len(a.values)})" for n, a in axes)
        raise RequestError("axis", f"{sizes} make {count} cells (at most {MAX_CELLS})", "axes")
    cells = _cells(base, axes)
    jobs, placements = plan_jobs([c.request for c in cells])
    return Plot(base, tuple(axes), tuple(cells), tuple(jobs), tuple(placements))


def axes_json(plot: Plot) -> list[dict[str, Any]]:
    """The plot's axes as JSON; with its base request, plot_from_json makes the same plot (cells, jobs, places)."""
    return [{"axis": name, "setting": axis.setting, "values": axis.json_values()} for name, axis in plot.axes]


def plot_from_json(base: JobRequest, axes: list[dict[str, Any]]) -> Plot:
    """The plot axes_json described; a ValueError (a RequestError among them) if it no longer makes one."""
    try:
        specs = {a["axis"]: Axis.from_json(a["setting"], a["values"]) for a in axes}
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not plot axes: {exc}") from None
    if not specs.keys() <= set(AXIS_NAMES):
        raise ValueError(f"not plot axes: {sorted(specs)}")
    return make_plot(base, specs.get("x"), specs.get("y"), specs.get("z"))


def _cells(base: JobRequest, axes: list[tuple[str, Axis]]) -> list[Cell]:
    named = dict(axes)
    sizes = [len(named[n].values) if n in named else 1 for n in AXIS_NAMES]
    ordered = sorted(axes, key=lambda na: na[1].setting == "sr")  # S/R last: it edits the final prompt
    cells = []
    for iz in range(sizes[2]):
        for iy in range(sizes[1]):
            for ix in range(sizes[0]):
                where = {"x": ix, "y": iy, "z": iz}
                fields = base.model_dump()
                for name, axis in ordered:
                    _apply(fields, axis, axis.values[where[name]])
                cells.append(Cell(ix, iy, iz, parse_request(fields)))
    return cells


def _group_key(r: JobRequest) -> tuple:
    return (r.batch_key(), r.negative_prompt)


def plan_jobs(requests: list[JobRequest]) -> tuple[list[JobRequest], list[Placement]]:
    """One-image requests -> few jobs (prompts x seeds where cells share settings) and each one's place."""
    groups: dict[tuple, list[JobRequest]] = {}
    for r in requests:
        groups.setdefault(_group_key(r), []).append(r)
    jobs: list[JobRequest] = []
    where: dict[tuple, Placement] = {}  # (group key, prompt, seed) -> placement
    for key, members in groups.items():
        prompts = list(dict.fromkeys(m.prompts[0] for m in members))
        seeds = list(dict.fromkeys(m.seeds[0] for m in members))
        pairs = {(m.prompts[0], m.seeds[0]) for m in members}
        if len(pairs) == len(prompts) * len(seeds):
            blocks = [(prompts, seeds)]
        else:  # not a full product: one job per prompt, with the seeds it needs
            blocks = [([p], [s for s in seeds if (p, s) in pairs]) for p in prompts]
        for block_prompts, block_seeds in blocks:
            for job_prompts, job_seeds in _chunks(block_prompts, block_seeds):
                jobs.append(parse_request({**members[0].model_dump(), "prompts": job_prompts, "seeds": job_seeds}))
                for row, p in enumerate(job_prompts):
                    for col, s in enumerate(job_seeds):
                        where[(key, p, s)] = Placement(len(jobs) - 1, row * len(job_seeds) + col)
    placements = [where[(_group_key(r), r.prompts[0], r.seeds[0])] for r in requests]
    return jobs, placements


def _chunks(prompts: list[str], seeds: list[int]):
    """prompts x seeds cut into blocks that each fit one job's bounds."""
    p_size = min(len(prompts), L.MAX_PROMPTS, L.MAX_ITEMS)
    s_size = min(len(seeds), L.MAX_SEEDS, max(1, L.MAX_ITEMS // p_size))
    for pi in range(0, len(prompts), p_size):
        for si in range(0, len(seeds), s_size):
            yield prompts[pi : pi + p_size], seeds[si : si + s_size]
