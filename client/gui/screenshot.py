"""Render the real window offscreen at its default size (1400x900) with the guide's batch and save it: the
README's screenshots, the window and a cell's right-click menu.

QT_QPA_PLATFORM=offscreen python -m seedgrid.client.gui.screenshot --out docs/screenshot.png \
    --menu-out docs/screenshot-menu.png
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QCoreApplication, QEventLoop, QItemSelectionModel, QTimer  # noqa: E402
from PySide6.QtGui import QPainter  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from seedgrid.client.cli.demo import GUIDE_PROMPT  # noqa: E402
from seedgrid.client.gui.main_window import MainWindow  # noqa: E402
from seedgrid.client.local import LocalStack  # noqa: E402


def wait_for(app: QCoreApplication, condition, timeout_s: float) -> None:
    loop = QEventLoop()
    timer = QTimer(interval=100)

    def quit_when_reached() -> None:
        if condition():
            loop.quit()

    timer.timeout.connect(quit_when_reached)
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    timer.start()
    loop.exec()
    timer.stop()
    if not condition():
        raise TimeoutError("the window did not reach the expected state in time")


def save_with_menu(app: QCoreApplication, window: MainWindow, index, out: Path) -> None:
    """The window with the cell's right-click menu open over it (a popup is a window of its own)."""
    view = window.grid_view
    at = view.viewport().mapToGlobal(view.visualRect(index).center())
    menu = window.cell_menu(index.row(), index.column())
    menu.popup(at)
    app.processEvents()
    shot = window.grab()
    painter = QPainter(shot)
    painter.drawPixmap(window.mapFromGlobal(menu.pos()), menu.grab())
    painter.end()
    out.parent.mkdir(parents=True, exist_ok=True)
    shot.save(str(out))
    menu.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("docs/screenshot.png"))
    parser.add_argument("--menu-out", type=Path, default=None, help="also the window with a cell's menu open")
    parser.add_argument("--size", type=int, default=256, help="image width and height")
    args = parser.parse_args(argv)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    with LocalStack(None, announce=False) as stack:
        stack.start_worker("tiny", "cpu")
        history = stack.enter_context(tempfile.TemporaryDirectory())
        window = MainWindow(stack.redis_url, client_id="screenshot", history_dir=Path(history))
        window.resize(1400, 900)
        window.show()
        wait_for(app, lambda: "tiny" in window.workers.models(), 120)
        c = window.compose
        c.prompt.setPlainText(GUIDE_PROMPT)
        c.seeds.setText("0-7")
        c.width_box.setValue(args.size)
        c.height_box.setValue(args.size)
        c.submit()
        wait_for(app, lambda: window.current_grid is not None and window.current_grid.complete, 300)
        grid = window.current_grid
        assert grid is not None  # the wait above returned only with a grid on show
        window.grid_view.selectionModel().select(grid.index(0, 1), QItemSelectionModel.SelectionFlag.ClearAndSelect)
        wait_for(app, lambda: window.jobs.jobs and window.jobs.jobs[0].state.finished, 30)
        # The worker's name holds this machine's host name: the picture shows a neutral one.
        window.jobs.rows = [job.model_copy(update={"worker": "tiny-worker-1"}) for job in window.jobs.rows]
        window.jobs.layoutChanged.emit()
        app.processEvents()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        window.grab().save(str(args.out))
        if args.menu_out:
            save_with_menu(app, window, grid.index(0, 2), args.menu_out)
        window.shutdown()
    print(args.out, args.menu_out or "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
