"""Copying a cell: the PNG with its generation metadata goes on the clipboard with the image, and the process
still exits cleanly with it there. Offscreen, a real Redis, a stand-in worker; no worker processes."""

import os
import subprocess
import sys
import textwrap
import uuid

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from seedgrid.client.gui.main_window import MainWindow
from seedgrid.shared.pngmeta import read_png_metadata
from seedgrid.shared.request import JobRequest
from tests.gui_stand_in import registered

WAIT = 15_000
MODEL = "fake-clipboard-model"


@pytest.fixture
def win(qtbot, server, tmp_path):
    with registered(server.url, MODEL, ("dpm++_2m",), shade=40) as worker:
        win = MainWindow(server.url, client_id=f"gui-{uuid.uuid4().hex[:8]}", history_dir=tmp_path / "history")
        qtbot.addWidget(win)
        win.show()
        qtbot.waitUntil(lambda: win.connected and MODEL in win.workers.models(), timeout=WAIT)
        win.stand_in = worker
        yield win
        win.shutdown()


def test_ctrl_c_puts_the_png_with_its_seed_and_prompt_on_the_clipboard(win, qtbot):
    win.submit(JobRequest(model=MODEL, prompts=["a heron at dawn"], seeds=[11, 22, 33], width=64, height=64, steps=4))
    qtbot.waitUntil(lambda: win.current_grid is not None, timeout=WAIT)
    grid = win.current_grid
    win.stand_in.finish(grid.job_id)
    qtbot.waitUntil(lambda: grid.complete and grid.loaded, timeout=WAIT)
    QGuiApplication.clipboard().clear()

    win.grid_view.setFocus()
    win.grid_view.select_cell(0, 1)
    qtbot.keyClick(win.grid_view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)

    mime = QGuiApplication.clipboard().mimeData()
    png = bytes(mime.data("image/png").data())
    assert png == grid.pngs[1]
    meta = read_png_metadata(png)
    assert meta.item is not None and (meta.item.seed, meta.item.prompt) == (22, "a heron at dawn")
    assert "Seed: 22," in meta.parameters
    image = QGuiApplication.clipboard().image()  # for programs that take only images
    assert (image.width(), image.height()) == (64, 64) and image.pixelColor(10, 10).red() == 40


def test_the_process_exits_cleanly_with_a_png_left_on_the_clipboard():
    """Qt deletes the clipboard's data after Python has finalized: that must not crash the process."""
    script = textwrap.dedent(
        """
        from PIL import Image
        from PySide6.QtGui import QGuiApplication
        from PySide6.QtWidgets import QApplication

        from seedgrid.client.gui.clipboard import copy_png
        from seedgrid.shared.pngmeta import encode_png
        from seedgrid.shared.request import JobRequest

        app = QApplication([])
        request = JobRequest(model="m", prompts=["a kite"], seeds=[7], width=64, height=64, steps=4)
        copy_png(encode_png(Image.new("RGB", (64, 64)), request, request.items()[0]))
        assert QGuiApplication.clipboard().mimeData().hasFormat("image/png")
        print("copied")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout.strip() == "copied", done.stderr[-2000:]
