"""A larger view of one image with its full parameters."""

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QDialog, QLabel, QPlainTextEdit, QScrollArea, QVBoxLayout


class ImageDialog(QDialog):
    def __init__(self, image: QImage, parameters: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Image")
        picture = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        picture.setPixmap(QPixmap.fromImage(image))
        scroll = QScrollArea(widgetResizable=True)
        scroll.setWidget(picture)
        self.parameters = QPlainTextEdit(readOnly=True)
        self.parameters.setPlainText(parameters)
        self.parameters.setMaximumHeight(120)
        layout = QVBoxLayout(self)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.parameters)
        self.resize(min(image.width() + 40, 1100), min(image.height() + 200, 900))
