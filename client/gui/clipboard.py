"""A cell's image to the clipboard: its PNG bytes, generation metadata kept, and the image for programs
that take only images."""

from PySide6.QtCore import QByteArray, QMimeData, QStringListModel
from PySide6.QtGui import QGuiApplication, QImage

PNG_MIME = "image/png"


def copy_png(png: bytes, image: QImage | None = None) -> None:
    """Put `png` (as image/png, its text chunks intact) and its image (decoded when not given) on the clipboard."""
    mime = _qt_made_mime_data()
    mime.setData(PNG_MIME, QByteArray(png))
    mime.setImageData(image if image is not None and not image.isNull() else QImage.fromData(png))
    QGuiApplication.clipboard().setMimeData(mime)  # the clipboard owns it from here


def _qt_made_mime_data() -> QMimeData:
    """An empty QMimeData allocated by Qt itself.

    The clipboard deletes what it holds at process exit, after Python has finalized. A QMimeData made
    in Python is a PySide subclass whose destructor calls into Python, which crashes the process there;
    one made by Qt's C++ (here, a model's drag data) has a plain destructor."""
    model = QStringListModel([""])
    mime = model.mimeData([model.index(0)])
    mime.clear()
    return mime
