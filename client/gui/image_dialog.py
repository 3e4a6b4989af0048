"""The large view: one image of the grid with its full parameters; previous/next (arrow keys) through the
grid's images, fit to the window or at full size."""

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
)

from seedgrid.shared.pngmeta import read_png_metadata


class ImageDialog(QDialog):
    """`pages`: (title, PNG) per image, in grid order; `index`: the one shown first."""

    def __init__(self, pages: list[tuple[str, bytes]], index: int = 0, parent=None):
        super().__init__(parent)
        self.pages = pages
        self.index = -1
        self.image = QImage()
        self.picture = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.scroll_area = QScrollArea(widgetResizable=True)
        self.scroll_area.setWidget(self.picture)
        self.parameters = QPlainTextEdit(readOnly=True)
        self.parameters.setMaximumHeight(120)
        self.parameters.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.previous_button = QPushButton("◀ Previous")
        self.next_button = QPushButton("Next ▶")
        self.fit_button = QPushButton("Fit to window")
        self.fit_button.setCheckable(True)
        self.fit_button.setChecked(True)
        self.position = QLabel()
        self.previous_button.clicked.connect(self.previous)
        self.next_button.clicked.connect(self.next)
        self.fit_button.toggled.connect(lambda _: self._show_pixmap())
        self.keys = {
            Qt.Key.Key_Left: self.previous,
            Qt.Key.Key_PageUp: self.previous,
            Qt.Key.Key_Right: self.next,
            Qt.Key.Key_PageDown: self.next,
            Qt.Key.Key_F: self.fit_button.toggle,
        }
        for focusable in (self.scroll_area, self.previous_button, self.next_button, self.fit_button):
            focusable.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the arrow keys are the dialog's
        buttons = QHBoxLayout()
        for widget in (self.previous_button, self.next_button, self.position):
            buttons.addWidget(widget)
        buttons.addStretch(1)
        buttons.addWidget(self.fit_button)
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.scroll_area, 1)
        layout.addWidget(self.parameters)
        self.resize(1000, 860)
        self.show_page(index)

    def show_page(self, index: int) -> None:
        index = max(0, min(index, len(self.pages) - 1))
        if index == self.index or not self.pages:
            return
        self.index = index
        title, png = self.pages[index]
        self.image = QImage.fromData(png)
        self.setWindowTitle(title)
        self.parameters.setPlainText(read_png_metadata(png).parameters)
        self.position.setText(f"{index + 1} / {len(self.pages)}")
        self.previous_button.setEnabled(index > 0)
        self.next_button.setEnabled(index < len(self.pages) - 1)
        self._show_pixmap()

    def next(self) -> None:
        self.show_page(self.index + 1)

    def previous(self) -> None:
        self.show_page(self.index - 1)

    def keyPressEvent(self, event) -> None:
        action = self.keys.get(event.key())
        if action is not None and not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier:
            action()
            return
        super().keyPressEvent(event)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._show_pixmap()

    def _show_pixmap(self) -> None:
        pixmap = QPixmap.fromImage(self.image)
        if self.fit_button.isChecked() and not pixmap.isNull():
            pixmap = pixmap.scaled(
                self.scroll_area.viewport().size(),
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        self.picture.setPixmap(pixmap)
