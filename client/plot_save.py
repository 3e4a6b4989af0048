"""Write a plot to a folder: a PNG per cell (with its metadata), plot.png per Z value, plot.json."""

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from seedgrid.client.plots import SubmittedPlot
from seedgrid.shared.job import JobStatus
from seedgrid.shared.plot import AXIS_NAMES, Cell, Plot
from seedgrid.shared.plot_image import plot_image

if TYPE_CHECKING:
    from seedgrid.client.api import SeedgridClient

PLOT_JSON = "plot.json"
FORMAT_VERSION = 1


@dataclass
class SavedPlot:
    cell_paths: list[Path | None]  # one per cell; None where its image was not made
    plot_paths: list[Path]  # one per Z value
    json_path: Path


def cell_filename(plot: Plot, cell: Cell) -> str:
    where = {"x": cell.x, "y": cell.y, "z": cell.z}
    return "-".join(f"{n}{where[n]}" for n in AXIS_NAMES if plot.axis(n)) + ".png"


def plot_filenames(plot: Plot) -> list[str]:
    layers = plot.shape[2]
    return ["plot.png"] if layers == 1 else [f"plot-z{z}.png" for z in range(layers)]


def plot_json(submitted: SubmittedPlot, files: list[str | None], statuses: dict[str, JobStatus]) -> dict:
    plot = submitted.plot
    return {
        "version": FORMAT_VERSION,
        "plot_id": submitted.plot_id,
        "axes": [
            {"axis": name, "setting": axis.setting, "values": axis.json_values(), "labels": axis.labels()}
            for name, axis in plot.axes
        ],
        "plots": plot_filenames(plot),
        "jobs": [
            {"job_id": job_id, "state": statuses[job_id].state.value if job_id in statuses else "unknown"}
            for job_id in submitted.job_ids
        ],
        "cells": [
            {"x": c.x, "y": c.y, "z": c.z, "settings": c.settings(), "job_id": job_id, "index": index, "file": f}
            for c, (job_id, index), f in zip(
                plot.cells, (submitted.cell_job(i) for i in range(len(plot.cells))), files, strict=True
            )
        ],
    }


def save_plot(
    client: "SeedgridClient", submitted: SubmittedPlot, statuses: dict[str, JobStatus], out_dir: Path
) -> SavedPlot:
    """Write what the plot's jobs have stored (all of it once they finished); cells not made stay grey."""
    plot = submitted.plot
    out_dir.mkdir(parents=True, exist_ok=True)
    stored: dict[tuple[str, int], bytes] = {}
    for job_id in submitted.job_ids:
        for record in client.images(job_id):
            stored[(job_id, record.index)] = client.image_png(job_id, record.index)
    paths: list[Path | None] = []
    images: list[Image.Image | None] = []
    for i, cell in enumerate(plot.cells):
        png = stored.get(submitted.cell_job(i))
        if png is None:
            paths.append(None)
            images.append(None)
            continue
        path = out_dir / cell_filename(plot, cell)
        path.write_bytes(png)
        paths.append(path)
        images.append(Image.open(io.BytesIO(png)))
    plot_paths = []
    for z, name in enumerate(plot_filenames(plot)):
        plot_image(plot, images, z).save(out_dir / name)
        plot_paths.append(out_dir / name)
    json_path = out_dir / PLOT_JSON
    files = [p.name if p else None for p in paths]
    json_path.write_text(json.dumps(plot_json(submitted, files, statuses), indent=1) + "\n", encoding="utf-8")
    return SavedPlot(paths, plot_paths, json_path)
