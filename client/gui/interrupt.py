"""Ctrl+C in the terminal closes the app: Python's handler runs only when Python gets control, so a
timer hands it control a few times a second while Qt's event loop runs."""

import signal

from PySide6.QtCore import QCoreApplication, QTimer

WAKE_MS = 200


def quit_on_ctrl_c(app: QCoreApplication) -> QTimer:
    signal.signal(signal.SIGINT, lambda *_: app.quit())
    timer = QTimer(app)
    timer.timeout.connect(lambda: None)
    timer.start(WAKE_MS)
    return timer
