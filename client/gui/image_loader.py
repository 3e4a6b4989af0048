"""Reads and decodes saved PNGs on its own thread, so the GUI thread never decodes a whole history."""

import logging

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QImage

from seedgrid.client.gui.history_store import HistoryStore

THUMB_SIZE = 48

log = logging.getLogger(__name__)


class ImageLoader(QObject):
    """Lives in a QThread; requests come as queued signals, results go back the same way."""

    images_loaded = Signal(str, object)  # job id, {index: (QImage, PNG bytes)}
    thumbnail_loaded = Signal(str, QImage)

    def __init__(self, store: HistoryStore):
        super().__init__()
        self.store = store
        self.wanted = ""  # the grid on show, set by the GUI thread: loads of other grids stop early
        self.stopping = False  # set by the GUI thread at close

    @Slot(str)
    def load_images(self, job_id: str) -> None:
        decoded: dict[int, tuple[QImage, bytes]] = {}
        try:
            for index, png in self.store.pngs(job_id).items():
                if job_id != self.wanted:
                    return
                decoded[index] = (QImage.fromData(png), png)
        except OSError:
            log.warning("grid %s: unreadable images", job_id, exc_info=True)
        self.images_loaded.emit(job_id, decoded)

    @Slot(list)
    def load_thumbnails(self, job_ids: list) -> None:
        for job_id in job_ids:
            if self.stopping:
                return
            try:
                image = self._thumbnail(job_id)
            except OSError:
                continue
            if image is not None and not image.isNull():
                self.thumbnail_loaded.emit(job_id, image)

    def _thumbnail(self, job_id: str) -> QImage | None:
        path = self.store.thumbnail_path(job_id)
        if path.exists():
            return QImage(str(path))
        png = self.store.first_png(job_id)  # saved before thumbnails were: made once, kept
        if png is None:
            return None
        image = make_thumbnail(QImage.fromData(png))
        image.save(str(path))  # PNG, from the name
        return image


def make_thumbnail(image: QImage) -> QImage:
    return image.scaled(
        THUMB_SIZE, THUMB_SIZE, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
    )
