"""Start the desktop app against a Redis URL."""

import sys

from PySide6.QtWidgets import QApplication

from client.gui.main_window import MainWindow


def run_app(redis_url: str, model: str | None = None) -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("seedgrid")
    app.setOrganizationName("seedgrid")
    window = MainWindow(redis_url)
    if model:
        window.compose.model.setEditText(model)
    window.show()
    try:
        return app.exec()
    finally:
        window.shutdown()
