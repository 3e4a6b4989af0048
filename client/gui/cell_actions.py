"""What continues from a grid's cell: its right-click menu, the large view, refine, more seeds, its settings
back into the compose panel, and its image or parameters to the clipboard or a file."""

import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFileDialog, QMenu

from seedgrid.client.gui.clipboard import copy_png
from seedgrid.client.gui.grid_model import ImageRole, PngRole
from seedgrid.client.gui.image_dialog import ImageDialog
from seedgrid.client.gui.refine_dialog import RefineDialog
from seedgrid.shared import limits as L
from seedgrid.shared.pngmeta import read_png_metadata
from seedgrid.shared.request import Item, RequestError, parse_request

if TYPE_CHECKING:
    from seedgrid.client.gui.main_window import MainWindow

# The cell menu: name, text, whether it needs the cell's image.
CELL_ACTIONS = [
    ("use_settings", "Use these settings", False),
    ("refine", "Refine…", False),
    ("more_like_this", "More seeds like this", False),
    ("plot_around", "Plot around this cell", False),
    ("copy_image", "Copy image", True),
    ("copy_parameters", "Copy parameters", True),
    ("save_image", "Save image…", True),
    ("large_view", "Open large view", True),
]


class CellActions:
    """The actions on the window's selected cell (more seeds: on its grid on show); new work goes through the
    window's submit, so it is followed like any other."""

    def __init__(self, window: "MainWindow"):
        self.window = window
        self.image_dialog: ImageDialog | None = None  # the large view, while one is open
        self.menu_shown: QMenu | None = None  # the last menu made

    def selected_item(self) -> Item | None:
        cell = self.window.grid_view.selected_cell()
        if self.window.current_grid is None or cell is None:
            return None
        return self.window.current_grid.item_at(*cell)

    def selected_png(self) -> bytes | None:
        cell = self.window.grid_view.selected_cell()
        if self.window.current_grid is None or cell is None:
            return None
        return self.window.current_grid.index(*cell).data(PngRole)

    def menu(self, row: int, col: int) -> QMenu:
        """The right-click menu of a cell (the cell is selected first): everything that continues from it."""
        grid = self.window.current_grid
        assert grid is not None, "cells have menus only on a grid on show"
        self.window.grid_view.select_cell(row, col)
        has_image = grid.index(row, col).data(PngRole) is not None
        slots = {
            "use_settings": self.use_settings,
            "refine": self.open_refine_dialog,
            "more_like_this": self.more_like_this,
            "plot_around": self.plot_around,
            "copy_image": self.copy_image,
            "copy_parameters": self.copy_parameters,
            "save_image": self.save_image_dialog,
            "large_view": lambda: self.show_image(row, col),
        }
        menu = QMenu(self.window)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        for name, text, needs_image in CELL_ACTIONS:
            action = menu.addAction(text)
            action.setObjectName(name)
            action.setEnabled(has_image or not needs_image)
            action.triggered.connect(slots[name])
            if name in ("plot_around", "save_image"):
                menu.addSeparator()
        self.menu_shown = menu
        return menu

    def show_image(self, row: int, col: int) -> ImageDialog | None:
        """The large view of a cell, with previous/next through the grid's made images."""
        grid = self.window.current_grid
        assert grid is not None, "cells are activated only on a grid on show"
        wanted = grid.item_at(row, col).index
        made = [item for item in grid.items if item.index in grid.pngs]
        if wanted not in grid.pngs:
            return None
        pages = [(grid.caption(i), grid.pngs[i.index]) for i in made]
        if self.image_dialog is not None:
            self.image_dialog.close()
        self.image_dialog = ImageDialog(pages, [i.index for i in made].index(wanted), self.window)
        self.image_dialog.open()
        return self.image_dialog

    # -- new work from a cell or the grid
    def use_settings(self) -> None:
        """Put the selected cell's settings (its prompt and seed) into the compose panel."""
        item = self.selected_item()
        if item is not None and self.window.current_grid is not None:
            self.window.compose.load_request(self.window.current_grid.request_at(item.row, item.col))

    def plot_around(self) -> None:
        """Plot mode, its base the selected cell's settings and seed."""
        self.use_settings()
        plot = self.window.compose.plot
        plot.set_mode(True)
        plot.rows["x"].values.setFocus()

    def open_refine_dialog(self) -> RefineDialog | None:
        item = self.selected_item()
        grid = self.window.current_grid
        if item is None or grid is None:
            self.window.statusBar().showMessage("select a cell to refine", 3000)
            return None
        dialog = RefineDialog(item.prompt, item.seed, self.window)
        base = grid.request_at(item.row, item.col)  # a plot cell's settings are its own
        dialog.accepted.connect(lambda: self._submit_variant(base, dialog.prompts(), [item.seed]))
        dialog.open()
        return dialog

    def more_like_this(self) -> None:
        """The selected cell's prompt at as many new random seeds as its grid has."""
        item = self.selected_item()
        if item is None or self.window.current_grid is None:
            return
        base = self.window.current_grid.request_at(item.row, item.col)
        seeds = [secrets.randbelow(L.MAX_SEED + 1) for _ in range(max(4, len(base.seeds)))]
        self._submit_variant(base, [item.prompt], seeds[: L.MAX_ITEMS])

    def more_seeds(self) -> None:
        """The same prompts at as many new random seeds as the current grid has."""
        if self.window.current_grid is None:
            return
        base = self.window.current_grid.request
        count = min(len(base.seeds), L.MAX_ITEMS // len(base.prompts))
        self._submit_variant(base, list(base.prompts), [secrets.randbelow(L.MAX_SEED + 1) for _ in range(count)])

    def _submit_variant(self, base, prompts: list[str], seeds: list[int]) -> None:
        try:
            request = parse_request({**base.model_dump(), "prompts": prompts, "seeds": seeds})
        except RequestError as exc:
            self.window.compose.show_error(exc.field, str(exc))
            return
        self.window.submit(request)

    # -- the cell's image out: clipboard and file
    def copy_image(self) -> None:
        """The selected cell's PNG, its generation metadata kept, and its image to the clipboard."""
        png = self.selected_png()
        cell = self.window.grid_view.selected_cell()
        if png is None or cell is None or self.window.current_grid is None:
            return
        copy_png(png, self.window.current_grid.index(*cell).data(ImageRole))
        self.window.statusBar().showMessage("image copied", 2000)

    def copy_parameters(self) -> None:
        png = self.selected_png()
        if png is not None:
            QGuiApplication.clipboard().setText(read_png_metadata(png).parameters)

    def save_image_dialog(self) -> None:
        png = self.selected_png()
        item = self.selected_item()
        if png is None or item is None:
            return
        path, _ = QFileDialog.getSaveFileName(self.window, "Save image", f"seed{item.seed}.png", "PNG (*.png)")
        if path:
            Path(path).write_bytes(png)
