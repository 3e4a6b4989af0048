"""One job as a grid: prompts are rows, seeds are columns; cells fill in as images arrive."""

import io
import re
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QAbstractTableModel, QMimeData, QModelIndex, QPersistentModelIndex, Qt, QUrl
from PySide6.QtGui import QImage

from seedgrid.shared.grid import grid_for_job
from seedgrid.shared.job import JobState, JobStatus
from seedgrid.shared.request import Item, JobRequest

ItemRole = Qt.ItemDataRole.UserRole + 1  # the cell's Item (prompt, seed, index)
ImageRole = Qt.ItemDataRole.UserRole + 2  # final QImage, or None
PreviewRole = Qt.ItemDataRole.UserRole + 3  # latest preview QImage, or None
PngRole = Qt.ItemDataRole.UserRole + 4  # the PNG bytes with their metadata
ProgressRole = Qt.ItemDataRole.UserRole + 5  # 0..1 for a cell still being made
CellStateRole = Qt.ItemDataRole.UserRole + 6  # why a cell will get no image ("cancelled", "expired"...), or None

LABEL_CHARS = 40
MIN_CUT = 10  # a common prefix or suffix shorter than this stays in the labels
TOKEN = re.compile(r"[\w'-]+|\s+|[^\w\s]")


def row_labels(prompts: list[str], limit: int = LABEL_CHARS) -> list[str]:
    """Short row labels that show where the prompts differ: a long common start is cut to "…", and, when a
    label is still too long, a long common end after one word of context ("…, golden hour…")."""
    if len(set(prompts)) < 2:
        return [_elide_end(p, limit) for p in prompts]
    tokens = [TOKEN.findall(p) for p in prompts]
    head = _common(tokens)
    tail = min(_common([t[::-1] for t in tokens]), min(map(len, tokens)) - head)
    return [_label(p, t, head, tail, limit) for p, t in zip(prompts, tokens, strict=True)]


def _label(prompt: str, tokens: list[str], head: int, tail: int, limit: int) -> str:
    words = [i for i in range(head) if _is_word(tokens[i])]
    start = words[-1] + 1 if words else 0  # cut through the last common word, keep the punctuation after it
    if len("".join(tokens[:start])) < MIN_CUT:
        start = 0
    end = len(tokens)
    tail_words = [i for i in range(len(tokens) - tail, len(tokens)) if _is_word(tokens[i])]
    rest = "".join(tokens[start:]).strip()
    if len(rest) + (start > 0) > limit and len(tail_words) > 1:
        cut = tail_words[1]  # keep one word of the common end as context
        if len("".join(tokens[cut:])) >= MIN_CUT:
            end = cut
    middle = "".join(tokens[start:end]).strip()
    if not middle:  # all of it is common (a prompt inside another): its end tells it apart
        return prompt if len(prompt) <= limit else "…" + prompt[-(limit - 1) :].lstrip()
    label = ("…" if start else "") + middle
    if len(label) > limit:
        return label[: limit - 1].rstrip() + "…"
    return label + ("…" if end < len(tokens) else "")


def _common(token_lists: list[list[str]]) -> int:
    count = 0
    for column in zip(*token_lists, strict=False):
        if any(t != column[0] for t in column):
            break
        count += 1
    return count


def _is_word(token: str) -> bool:
    return bool(re.match(r"[\w'-]", token))


def _elide_end(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class GridModel(QAbstractTableModel):
    def __init__(self, job_id: str, request: JobRequest, parent=None):
        super().__init__(parent)
        self.job_id = job_id
        self.request = request
        self.items: list[Item] = request.items()
        self.status: JobStatus | None = None
        self.done: set[int] = set()  # indices whose image is made (decoded below only while shown)
        self.images: dict[int, QImage] = {}
        self.pngs: dict[int, bytes] = {}
        self.previews: dict[int, QImage] = {}
        self.gone = ""  # "expired" or "lost" once the app can no longer follow the job
        self.name = ""  # given by the user; replaces the prompt in the title
        self.unknown_state = "queued"  # the title's state while no status was read ("saved": an old save)
        self.thumbnail: QImage | None = None
        self.labels = row_labels(request.prompts)
        self.folder: Path | None = None  # where the grid's PNGs are kept (NNN.png), for dragging files out

    @property
    def title(self) -> str:
        prompt = self.request.prompts[0]
        state = self.gone or (self.status.activity if self.status else self.unknown_state)
        more = f" (+{len(self.request.prompts) - 1} prompts)" if len(self.request.prompts) > 1 else ""
        label = self.name or f"{prompt[:48]}{more}"
        return f"{label} · {len(self.request.seeds)} seeds · {state}"

    @property
    def complete(self) -> bool:
        return len(self.done) == len(self.items)

    @property
    def loaded(self) -> bool:
        """Every made image is decoded."""
        return self.done <= self.images.keys()

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.request.prompts)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.request.seeds)

    def item_at(self, row: int, col: int) -> Item:
        return self.items[row * len(self.request.seeds) + col]

    def request_at(self, row: int, col: int) -> JobRequest:
        """The one-image request of a cell: what "use these settings" and "refine" start from."""
        item = self.item_at(row, col)
        return self.request.model_copy(update={"prompts": [item.prompt], "seeds": [item.seed]})

    @property
    def job_ids(self) -> list[str]:
        return [self.job_id]

    def caption(self, item: Item) -> str:
        """A cell's name in the large view."""
        return f"{self.labels[item.index // len(self.request.seeds)]} · seed {item.seed}"

    def picture(self) -> Image.Image:
        """The grid as one image, as Save grid writes it."""
        return grid_for_job(self.request, {i: Image.open(io.BytesIO(png)) for i, png in self.pngs.items()})

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        item = self.item_at(index.row(), index.column())
        if role == Qt.ItemDataRole.DisplayRole:
            return f"seed {item.seed}"
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{item.prompt}\nseed {item.seed}"
        if role == ItemRole:
            return item
        if role == ImageRole:
            return self.images.get(item.index)
        if role == PreviewRole:
            return self.previews.get(item.index)
        if role == PngRole:
            return self.pngs.get(item.index)
        if role == ProgressRole:
            return self._cell_progress(item.index)
        if role == CellStateRole:
            return self._cell_state(item.index)
        return None

    def headerData(self, section: int, orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if role not in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return None
        if orientation == Qt.Orientation.Horizontal:
            return f"seed {self.request.seeds[section]}"
        return self.request.prompts[section] if role == Qt.ItemDataRole.ToolTipRole else self.labels[section]

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        flags = super().flags(index)
        if index.isValid() and self.item_at(index.row(), index.column()).index in self.pngs:
            flags |= Qt.ItemFlag.ItemIsDragEnabled
        return flags

    def mimeTypes(self) -> list[str]:
        return ["text/uri-list", "image/png", "application/x-qt-image"]

    def mimeData(self, indexes) -> QMimeData:
        """The first dragged cell's image: its PNG file as a URL (with its parameters), the PNG and the image."""
        mime = QMimeData()
        for index in indexes:
            item = self.item_at(index.row(), index.column())
            png = self.pngs.get(item.index)
            if png is None:
                continue
            path = self.folder / f"{item.index:03d}.png" if self.folder else None
            if path is not None and path.is_file():
                mime.setUrls([QUrl.fromLocalFile(str(path))])
            mime.setData("image/png", png)
            mime.setImageData(self.images.get(item.index) or QImage.fromData(png))
            break
        return mime

    def set_status(self, status: JobStatus) -> None:
        self.status = status
        self._changed_all()

    def set_gone(self, state: str) -> None:
        self.gone = state
        self._changed_all()

    def set_image(self, index: int, image: QImage, png: bytes) -> None:
        self.done.add(index)
        self.images[index] = image
        self.pngs[index] = png
        self.previews.pop(index, None)
        self._changed(index)

    def mark_done(self, index: int) -> None:
        """An image made and saved, not kept decoded (the grid is not on show)."""
        self.done.add(index)
        self.previews.pop(index, None)
        self._changed(index)

    def set_images(self, decoded: dict[int, tuple[QImage, bytes]]) -> None:
        for index, (image, png) in decoded.items():
            self.images[index], self.pngs[index] = image, png
            self.done.add(index)
        self._changed_all()

    def unload(self) -> None:
        """Drop decoded images (they stay on disk)."""
        self.images.clear()
        self.pngs.clear()
        self._changed_all()

    def set_name(self, name: str) -> None:
        self.name = name
        self._changed_all()

    def set_preview(self, index: int, image: QImage) -> None:
        if index not in self.done:
            self.previews[index] = image
            self._changed(index)

    def _cell_state(self, index: int) -> str | None:
        if index in self.done:
            return None
        if self.gone:
            return self.gone
        if self.status is not None and self.status.state in (JobState.CANCELLED, JobState.FAILED):
            return self.status.state.value  # (succeeded: the cell's image is on its way)
        return None

    def _cell_progress(self, index: int) -> float | None:
        if index in self.done or self.status is None or self._cell_state(index):
            return None
        if self.status.state == JobState.RUNNING and self.status.steps:
            return self.status.step / self.status.steps
        return 0.0

    def _changed(self, index: int) -> None:
        cell = self.index(index // len(self.request.seeds), index % len(self.request.seeds))
        self.dataChanged.emit(cell, cell)

    def _changed_all(self) -> None:
        if self.items:
            self.dataChanged.emit(self.index(0, 0), self.index(self.rowCount() - 1, self.columnCount() - 1))
