"""Settings back from a PNG: every generation setting a seedgrid (or A1111-style) PNG holds, into the compose
panel, from Open PNG… or a PNG dropped on the window."""

from pathlib import Path

from PySide6.QtCore import QMimeData
from PySide6.QtWidgets import QStatusBar

from seedgrid.client.gui.compose_panel import ComposePanel
from seedgrid.shared.pngmeta import read_png_metadata


def png_paths(mime: QMimeData) -> list[str]:
    """The local PNG files among dragged URLs."""
    return [url.toLocalFile() for url in mime.urls() if url.toLocalFile().lower().endswith(".png")]


def restore_from_png(path: str | Path, compose: ComposePanel, status: QStatusBar) -> bool:
    """Restore every setting the PNG at `path` holds into `compose`; what came of it on `status`."""
    try:
        meta = read_png_metadata(path)
    except (ValueError, OSError) as exc:
        status.showMessage(f"cannot read {Path(path).name}: {exc}", 6000)
        return False
    if meta.request is None:
        status.showMessage(f"{Path(path).name} holds no generation parameters", 6000)
        return False
    request = meta.request
    if meta.item is not None:
        request = request.model_copy(update={"prompts": [meta.item.prompt], "seeds": [meta.item.seed]})
    compose.load_request(request)
    status.showMessage(f"settings restored from {Path(path).name}", 4000)
    return True
