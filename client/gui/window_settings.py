"""What the main window keeps across starts, in a QSettings: its geometry, panel layout, zoom and last compose
settings. Without a QSettings nothing is kept, and the window starts at its defaults."""

import json
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QSettings, QSize

from seedgrid.client.gui.compose_panel import ComposePanel
from seedgrid.client.gui.settings import COMPOSE_KEY, GEOMETRY_KEY, LAYOUT_KEY, SIZE_KEY, ZOOM_KEY

if TYPE_CHECKING:
    from seedgrid.client.gui.main_window import MainWindow

DEFAULT_SIZE = (1400, 900)
DEFAULT_ZOOM = 88  # at the default size, a grid of 8 seeds fits beside the compose panel and the grids list


class WindowSettings:
    def __init__(self, settings: QSettings | None):
        self.settings = settings

    def restore(self, window: "MainWindow") -> None:
        """Once the window is laid out: what was kept, over its defaults."""
        if self.settings is None:
            return
        geometry, layout = self.settings.value(GEOMETRY_KEY), self.settings.value(LAYOUT_KEY)
        if isinstance(geometry, QByteArray):
            window.restoreGeometry(geometry)  # the position and a maximized state; the size as saved
            size = self.settings.value(SIZE_KEY)
            if isinstance(size, QSize) and not window.isMaximized() and size.isValid():
                window.resize(size)
        if isinstance(layout, QByteArray):
            window.restoreState(layout)
        try:
            window.zoom.setValue(int(str(self.settings.value(ZOOM_KEY, DEFAULT_ZOOM))))
        except ValueError:
            pass
        try:
            values = json.loads(str(self.settings.value(COMPOSE_KEY, "{}")))
        except ValueError:
            values = {}
        if isinstance(values, dict):
            window.compose.set_values(values)

    def save(self, window: "MainWindow") -> None:
        if self.settings is None:
            return
        self.settings.setValue(GEOMETRY_KEY, window.saveGeometry())
        self.settings.setValue(SIZE_KEY, window.size())
        self.settings.setValue(LAYOUT_KEY, window.saveState())
        self.settings.setValue(ZOOM_KEY, window.zoom.value())
        self.keep_compose(window.compose)
        self.settings.sync()

    def keep_compose(self, compose: ComposePanel) -> None:
        """The compose fields alone: the window keeps them on each submit."""
        if self.settings is not None:
            self.settings.setValue(COMPOSE_KEY, json.dumps(compose.values()))
