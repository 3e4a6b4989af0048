"""Start the desktop app against a Redis URL."""

import sys

from PySide6.QtWidgets import QApplication

from seedgrid.client.gui.interrupt import quit_on_ctrl_c
from seedgrid.client.gui.main_window import MainWindow
from seedgrid.client.gui.settings import remember_redis_url, settings


def run_app(redis_url: str, model: str | None = None, remember: bool = False) -> int:
    """`remember`: keep the URL once connected, for the next `seedgrid gui` (not for private Redis runs)."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("seedgrid")
    app.setOrganizationName("seedgrid")
    window = MainWindow(redis_url, settings=settings())  # geometry, layout, zoom, compose kept across starts
    if model:
        window.compose.model.setEditText(model)
    if remember:
        remember_when_connected(window, redis_url)
    window.show()
    quit_on_ctrl_c(app)
    try:
        return app.exec()
    finally:
        window.shutdown()


def remember_when_connected(window: MainWindow, redis_url: str) -> None:
    """Keep `redis_url` once a call with it worked (the backend says "connected" only after one did)."""

    def remember(ok: bool, _message: str) -> None:
        if ok:
            remember_redis_url(redis_url)

    # The window's signal, not the backend's: the backend may have said "connected" before this line
    # ran, and the window passes that on only once the event loop delivers it.
    window.connection_changed.connect(remember)
