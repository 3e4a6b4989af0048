"""Prompt, negative prompt and settings; every invalid value is flagged at its field, all at once, before
sending. Spin boxes span exactly the contract's bounds (shared/limits.py); Generate stays put below."""

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from seedgrid.shared import limits as L
from seedgrid.shared.request import JobRequest, RequestError, parse_request
from seedgrid.shared.seeds import parse_seeds

ERROR_STYLE = "color: #c62828;"
# A valid value for each field, put in place of a refused one so the contract reports the next field too.
STAND_INS: dict[str, dict[str, Any]] = {
    "model": {"model": "m"},
    "prompts": {"prompts": ["p"]},
    "negative_prompt": {"negative_prompt": ""},
    "width": {"width": L.MIN_SIZE},
    "height": {"height": L.MIN_SIZE},
    "steps": {"steps": L.MIN_STEPS},
    "guidance": {"guidance": L.MIN_GUIDANCE},
    "scheduler": {"scheduler": L.SCHEDULER_NAMES[0]},
    "seeds": {"seeds": [L.MIN_SEED]},
    "items": {"seeds": [L.MIN_SEED]},
}


class ComposePanel(QWidget):
    generate_requested = Signal(object)  # a valid JobRequest

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.prompt = QPlainTextEdit(placeholderText="portrait photo of a old warrior chief")
        self.prompt.setFixedHeight(80)
        self.negative = QLineEdit(placeholderText="blurry, low quality")
        self.model = QComboBox(editable=True)
        self.model.setEditText("tiny")
        self.scheduler = QComboBox()  # readable labels ("Euler a"); each item's data is the request's name
        self._set_schedulers(list(L.SCHEDULER_NAMES))
        self.steps = _spin(L.MIN_STEPS, L.MAX_STEPS, 20)
        self.guidance = QDoubleSpinBox(
            minimum=L.MIN_GUIDANCE, maximum=L.MAX_GUIDANCE, singleStep=0.5, value=7.5, decimals=1
        )
        self.width_box = _spin(L.MIN_SIZE, L.MAX_SIZE, 512, step=L.SIZE_MULTIPLE)
        self.height_box = _spin(L.MIN_SIZE, L.MAX_SIZE, 512, step=L.SIZE_MULTIPLE)
        self.seeds = QLineEdit("0-3", placeholderText="0-7, 3,17,42 or random:8")
        self.generate_button = QPushButton("Generate  (Ctrl+Enter)")
        self.errors: dict[str, QLabel] = {}
        self._served: dict[str, list[str]] = {}

        form = QFormLayout()
        for field, label, widget in [
            ("prompts", "Prompt", self.prompt),
            ("negative_prompt", "Negative", self.negative),
            ("model", "Model", self.model),
            ("scheduler", "Scheduler", self.scheduler),
            ("steps", "Steps", self.steps),
            ("guidance", "Guidance", self.guidance),
            ("width", "Width", self.width_box),
            ("height", "Height", self.height_box),
            ("seeds", "Seeds", self.seeds),
        ]:
            form.addRow(label, widget)
            error = _error_label()
            error.setObjectName(f"error_{field}")
            self.errors[field] = error
            form.addRow("", error)
        self.general_error = _error_label()
        fields = QWidget()
        fields_layout = QVBoxLayout(fields)
        fields_layout.setContentsMargins(0, 0, 0, 0)
        fields_layout.addLayout(form)
        fields_layout.addWidget(self.general_error)
        fields_layout.addStretch(1)
        scroll = QScrollArea(widgetResizable=True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(fields)
        layout = QVBoxLayout(self)
        layout.addWidget(scroll, 1)  # errors take room in here; the button below never moves
        layout.addWidget(self.generate_button)

        self.generate_button.clicked.connect(self.submit)
        self.model.currentTextChanged.connect(self._model_changed)

    def prompts(self) -> list[str]:
        return [self.prompt.toPlainText().strip()]

    def build_request(self, prompts: list[str] | None = None, seeds: list[int] | None = None) -> JobRequest | None:
        """The request the fields describe, or None with every problem shown at its field."""
        self.clear_errors()
        errors: dict[str, str] = {}
        if seeds is None:
            try:
                seeds = parse_seeds(self.seeds.text())
            except RequestError as exc:
                errors[exc.field] = str(exc)
                seeds = [L.MIN_SEED]
        data = {
            "model": self.model.currentText().strip(),
            "prompts": prompts or self.prompts(),
            "seeds": seeds,
            "negative_prompt": self.negative.text(),
            "width": self.width_box.value(),
            "height": self.height_box.value(),
            "steps": self.steps.value(),
            "guidance": self.guidance.value(),
            "scheduler": self.scheduler_name(),
        }
        request = _check_all(data, errors)
        for field, message in errors.items():
            self.show_error(field, message)
        return None if errors else request

    def submit(self) -> None:
        request = self.build_request()
        if request is not None:
            self.generate_requested.emit(request)

    def show_error(self, field: str, message: str) -> None:
        label = self.errors.get("seeds" if field == "items" else field, self.general_error)
        label.setText(message)
        label.setToolTip(message)
        label.setVisible(True)

    def clear_errors(self) -> None:
        for label in [*self.errors.values(), self.general_error]:
            label.clear()
            label.setVisible(False)

    def set_served_models(self, served: dict[str, list[str]]) -> None:
        if served == self._served:
            return
        self._served = served
        current = self.model.currentText()
        self.model.blockSignals(True)
        self.model.clear()
        self.model.addItems(sorted(served))
        self.model.setEditText(current if current else next(iter(sorted(served)), "tiny"))
        self.model.blockSignals(False)
        self._model_changed(self.model.currentText())

    def load_request(self, request: JobRequest) -> None:
        """Restore every setting a request holds (from a PNG or a grid)."""
        self.prompt.setPlainText(request.prompts[0])
        self.negative.setText(request.negative_prompt)
        self.model.setEditText(request.model)
        self.set_scheduler(request.scheduler)
        self.steps.setValue(request.steps)
        self.guidance.setValue(request.guidance)
        self.width_box.setValue(request.width)
        self.height_box.setValue(request.height)
        self.seeds.setText(",".join(str(s) for s in request.seeds))
        self.clear_errors()

    def _model_changed(self, model: str) -> None:
        schedulers = self._served.get(model.strip())
        if schedulers is None:
            if self._served:
                self.show_error("model", f"model: no online worker serves {model!r}")
            return
        self.errors["model"].setVisible(False)
        current = self.scheduler_name()
        self._set_schedulers(schedulers)
        if current in schedulers:
            self.set_scheduler(current)

    def scheduler_name(self) -> str:
        """The request's name of the chosen scheduler ("euler_a" for "Euler a")."""
        name = self.scheduler.currentData()
        return str(name) if name else self.scheduler.currentText()

    def set_scheduler(self, name: str) -> None:
        found = self.scheduler.findData(name)
        if found >= 0:
            self.scheduler.setCurrentIndex(found)

    def _set_schedulers(self, names: list[str]) -> None:
        self.scheduler.clear()
        for name in names:
            self.scheduler.addItem(L.SCHEDULER_LABELS.get(name, name), name)
            self.scheduler.setItemData(self.scheduler.count() - 1, name, Qt.ItemDataRole.ToolTipRole)

    def values(self) -> dict[str, Any]:
        """Every field as it stands, valid or not: what the app keeps for the next start."""
        return {
            "prompt": self.prompt.toPlainText(),
            "negative": self.negative.text(),
            "model": self.model.currentText(),
            "scheduler": self.scheduler_name(),
            "steps": self.steps.value(),
            "guidance": self.guidance.value(),
            "width": self.width_box.value(),
            "height": self.height_box.value(),
            "seeds": self.seeds.text(),
        }

    def set_values(self, values: dict[str, Any]) -> None:
        """Put back what values() gave; unknown or unreadable entries are skipped."""
        setters: dict[str, tuple[Any, Any]] = {
            "prompt": (self.prompt.setPlainText, str),
            "negative": (self.negative.setText, str),
            "model": (self.model.setEditText, str),
            "scheduler": (self.set_scheduler, str),
            "steps": (self.steps.setValue, int),
            "guidance": (self.guidance.setValue, float),
            "width": (self.width_box.setValue, int),
            "height": (self.height_box.setValue, int),
            "seeds": (self.seeds.setText, str),
        }
        for key, (setter, kind) in setters.items():
            if key in values:
                try:
                    setter(kind(values[key]))
                except (TypeError, ValueError):
                    continue


def _check_all(data: dict[str, Any], errors: dict[str, str]) -> JobRequest | None:
    """The request, or None with every field's error added to `errors` (the contract names one per call)."""
    for _ in range(len(STAND_INS) + 1):
        try:
            return parse_request(data)
        except RequestError as exc:
            errors.setdefault(exc.field, str(exc))
            if exc.field not in STAND_INS or all(data.get(k) == v for k, v in STAND_INS[exc.field].items()):
                return None
            data = {**data, **STAND_INS[exc.field]}
    return None


def _error_label() -> QLabel:
    """A hidden line for a field's error, shown by show_error."""
    label = QLabel(wordWrap=True)
    label.setStyleSheet(ERROR_STYLE)
    label.setVisible(False)
    return label


def _spin(low: int, high: int, value: int, step: int = 1) -> QSpinBox:
    box = QSpinBox(minimum=low, maximum=high, singleStep=step)
    box.setValue(value)
    return box
