"""The compose panel's LoRAs: one row per LoRA, a name the workers allow and a weight on a slider."""

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QHBoxLayout, QPushButton, QSlider, QVBoxLayout, QWidget

from seedgrid.shared import limits as L
from seedgrid.shared.request import LoraRef

SLIDER_STEPS = 100  # slider units per weight 1.0
SLIDER_RANGE = 2.0  # the slider spans -2..2, the usual range; the box beside it takes the contract's bounds


class LoraRow(QWidget):
    removed = Signal(object)

    def __init__(self, names: list[str], name: str = "", weight: float = 1.0, parent=None) -> None:
        super().__init__(parent)
        self.name = QComboBox(editable=True)
        self.name.addItems(names)
        self.name.setEditText(name or (names[0] if names else ""))
        self.name.setToolTip("a LoRA that online workers allow (seedgrid worker --loras DIR)")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(int(-SLIDER_RANGE * SLIDER_STEPS), int(SLIDER_RANGE * SLIDER_STEPS))
        self.weight = QDoubleSpinBox(minimum=L.MIN_LORA_WEIGHT, maximum=L.MAX_LORA_WEIGHT, singleStep=0.05, decimals=2)
        self.remove = QPushButton("✕")
        self.remove.setToolTip("remove this LoRA")
        self.remove.setFixedWidth(28)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.name, 3)
        layout.addWidget(self.slider, 2)
        layout.addWidget(self.weight)
        layout.addWidget(self.remove)
        self.slider.valueChanged.connect(lambda units: self.weight.setValue(units / SLIDER_STEPS))
        self.weight.valueChanged.connect(self._weight_changed)
        self.remove.clicked.connect(lambda: self.removed.emit(self))
        self.weight.setValue(weight)

    def _weight_changed(self, value: float) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(round(value * SLIDER_STEPS))
        self.slider.blockSignals(False)

    def value(self) -> dict:
        return {"name": self.name.currentText().strip(), "weight": round(self.weight.value(), 2)}


class LoraPicker(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.available: list[str] = []
        self.rows: list[LoraRow] = []
        self.add_button = QPushButton("Add LoRA")
        self.add_button.setToolTip("or type <lora:NAME:WEIGHT> in the prompt")
        self.rows_layout = QVBoxLayout()
        self.rows_layout.setContentsMargins(0, 0, 0, 0)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self.rows_layout)
        layout.addWidget(self.add_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.add_button.clicked.connect(lambda: self.add())

    def set_available(self, names: list[str]) -> None:
        """The LoRA names online workers allow; each row's list follows, the typed names stay."""
        if names == self.available:
            return
        self.available = list(names)
        for row in self.rows:
            current = row.name.currentText()
            row.name.clear()
            row.name.addItems(self.available)
            row.name.setEditText(current)

    def add(self, name: str = "", weight: float = 1.0) -> LoraRow:
        row = LoraRow(self.available, name, weight)
        row.removed.connect(self._remove)
        self.rows.append(row)
        self.rows_layout.addWidget(row)
        return row

    def _remove(self, row: LoraRow) -> None:
        self.rows.remove(row)
        row.setParent(None)
        row.deleteLater()

    def loras(self) -> list[dict]:
        """The rows as the request's `loras` (rows left without a name are skipped)."""
        return [value for row in self.rows if (value := row.value())["name"]]

    def set_loras(self, loras: list[LoraRef]) -> None:
        for row in list(self.rows):
            self._remove(row)
        for lora in loras:
            self.add(lora.name, lora.weight)
