"""Render the real window offscreen with a filled grid and save it: the README's screenshot.

QT_QPA_PLATFORM=offscreen python -m seedgrid.client.gui.screenshot --out docs/screenshot.png
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QCoreApplication, QEventLoop, QItemSelectionModel, QTimer  # noqa: E402
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("docs/screenshot.png"))
    parser.add_argument("--size", type=int, default=256, help="image width and height")
    args = parser.parse_args(argv)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    with LocalStack(None, announce=False) as stack:
        stack.start_worker("tiny", "cpu")
        history = stack.enter_context(tempfile.TemporaryDirectory())
        window = MainWindow(stack.redis_url, client_id="screenshot", history_dir=Path(history))
        window.resize(1800, 900)
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
        window.zoom.setValue(104)
        wait_for(app, lambda: window.jobs.jobs and window.jobs.jobs[0].state.finished, 30)
        app.processEvents()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        window.grab().save(str(args.out))
        window.shutdown()
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
