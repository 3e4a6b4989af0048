"""The grid in the centre of the window: a table of cells, each an image, a preview or a placeholder.

A cell opens the large view (double click, Enter), its menu (right click), copies its image (Ctrl+C) and can
be dragged out of the app as a PNG file."""

from PySide6.QtCore import QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QKeySequence, QPainter
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QStyle, QStyledItemDelegate, QTableView

from seedgrid.client.gui.grid_model import CellStateRole, ImageRole, ItemRole, PreviewRole, ProgressRole

PLACEHOLDER = QColor(70, 70, 70)
SELECTED = QColor(66, 133, 244)
EMPTY_TEXT = (
    "No grid yet.\n\nWrite a prompt on the left, set the seeds (0-7 makes eight images)\n"
    "and press Generate (Ctrl+Enter). Each prompt becomes a row, each seed a column.\n\n"
    "Or drop a PNG here to restore the settings it was made with."
)
ROW_LABEL_MAX_WIDTH = 170


class CellDelegate(QStyledItemDelegate):
    def paint(self, painter: QPainter, option, index) -> None:
        painter.save()
        rect = option.rect.adjusted(2, 2, -2, -2)
        image = index.data(ImageRole) or index.data(PreviewRole)
        if image is not None and not image.isNull():
            scaled = image.scaled(
                rect.size(), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
            )
            x = rect.x() + (rect.width() - scaled.width()) // 2
            y = rect.y() + (rect.height() - scaled.height()) // 2
            painter.drawImage(x, y, scaled)
        else:
            painter.fillRect(rect, PLACEHOLDER)
        state = index.data(CellStateRole)
        if state:
            painter.setPen(Qt.GlobalColor.white)
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, state)
        progress = index.data(ProgressRole)
        if progress is not None:
            bar = QRect(rect.x(), rect.bottom() - 5, int(rect.width() * progress), 5)
            painter.fillRect(bar, SELECTED)
        label_rect = QRect(rect.x(), rect.y(), rect.width(), 18)
        painter.fillRect(label_rect, QColor(0, 0, 0, 140))
        painter.setPen(Qt.GlobalColor.white)
        painter.drawText(
            label_rect.adjusted(4, 0, -4, 0), Qt.AlignmentFlag.AlignVCenter, f"seed {index.data(ItemRole).seed}"
        )
        if option.state & QStyle.StateFlag.State_Selected:
            painter.setPen(SELECTED)
            painter.drawRect(rect.adjusted(0, 0, -1, -1))
        painter.restore()

    def sizeHint(self, option, index) -> QSize:
        return QSize(160, 160)


class GridView(QTableView):
    cell_activated = Signal(int, int)  # row, column (double click or Enter: the larger view)
    copy_requested = Signal()  # Ctrl+C on a cell
    menu_requested = Signal(int, int, QPoint)  # row, column, where (global): the cell's menu

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setItemDelegate(CellDelegate(self))
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectItems)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.verticalHeader().setMaximumWidth(ROW_LABEL_MAX_WIDTH)
        self.verticalHeader().setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setDefaultDropAction(Qt.DropAction.CopyAction)
        self.doubleClicked.connect(lambda index: self.cell_activated.emit(index.row(), index.column()))
        self.set_cell_size(160)

    def set_cell_size(self, pixels: int) -> None:
        """Zoom between thumbnails and full size."""
        self.cell_size = pixels
        self.horizontalHeader().setDefaultSectionSize(pixels)
        self.verticalHeader().setDefaultSectionSize(pixels)

    def select_cell(self, row: int, col: int) -> None:
        model = self.model()
        if model is not None:
            self.setCurrentIndex(model.index(row, col))

    def contextMenuEvent(self, event) -> None:
        index = self.indexAt(event.pos())
        if index.isValid():
            self.select_cell(index.row(), index.column())
            self.menu_requested.emit(index.row(), index.column(), event.globalPos())

    def keyPressEvent(self, event) -> None:
        index = self.currentIndex()
        if event.matches(QKeySequence.StandardKey.Copy):
            self.copy_requested.emit()
            return
        plain = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier == Qt.KeyboardModifier.NoModifier
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and plain and index.isValid():
            self.cell_activated.emit(index.row(), index.column())
            return
        super().keyPressEvent(event)

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        model = self.model()
        if model is None or model.rowCount() == 0:
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(
                self.viewport().rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, EMPTY_TEXT
            )
            painter.end()

    def selected_cell(self) -> tuple[int, int] | None:
        indexes = self.selectionModel().selectedIndexes() if self.selectionModel() else []
        return (indexes[0].row(), indexes[0].column()) if indexes else None
