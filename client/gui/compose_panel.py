"""Prompt, negative prompt and settings; every invalid value is flagged at its field, all at once, before
sending. Spin boxes span exactly the contract's bounds (shared/limits.py); Generate stays put below.

The controls follow the chosen model's family as its workers advertise it: the schedulers it allows, its
size multiple as the size boxes' step, its default size, steps and guidance (where the user has not changed
them) and no negative prompt for a model that takes none (Flux)."""

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

from seedgrid.client.gui.lora_picker import LoraPicker
from seedgrid.client.gui.plot_panel import PlotPanel
from seedgrid.shared import limits as L
from seedgrid.shared.family_rules import FAMILY_LABELS, check_family
from seedgrid.shared.lora_syntax import lift_lora_tags
from seedgrid.shared.request import JobRequest, LoraRef, RequestError, parse_request
from seedgrid.shared.seeds import parse_seeds
from seedgrid.shared.workers import TAKES_FIELDS, ModelOffer

ERROR_STYLE = "color: #c62828;"
GENERATE_TEXT = "Generate  (Ctrl+Enter)"
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
    "loras": {"loras": []},
}
# What of a heartbeat the controls follow (busy, jobs done and the like change at every beat).
FAMILY_FIELDS = TAKES_FIELDS
NEGATIVE_PLACEHOLDER = "blurry, low quality"


class ComposePanel(QWidget):
    generate_requested = Signal(object)  # a valid JobRequest

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.prompt = QPlainTextEdit(placeholderText="portrait photo of a old warrior chief")
        self.prompt.setFixedHeight(80)
        self.negative = QLineEdit(placeholderText=NEGATIVE_PLACEHOLDER)
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
        self.loras = LoraPicker()
        self.generate_button = QPushButton(GENERATE_TEXT)
        self.plot = PlotPanel(self.build_request, self.show_error)
        self.errors: dict[str, QLabel] = {}
        self._served: dict[str, ModelOffer] = {}  # model -> what a worker serving it advertises
        self._families: dict[str, dict[str, Any]] = {}  # model -> its FAMILY_FIELDS
        self._followed: dict[str, Any] | None = None  # the FAMILY_FIELDS the controls follow now
        # The defaults last applied (SD's until a worker says otherwise): a box still at its default takes
        # the next model's; one the user changed keeps its value.
        self._defaults: dict[str, float] = {"width": 512, "height": 512, "steps": 20, "guidance": 7.5}

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
            ("loras", "LoRAs", self.loras),
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
        fields_layout.addWidget(self.plot)
        fields_layout.addStretch(1)
        scroll = QScrollArea(widgetResizable=True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(fields)
        layout = QVBoxLayout(self)
        layout.addWidget(scroll, 1)  # errors take room in here; the button below never moves
        layout.addWidget(self.generate_button)
        layout.addWidget(self.plot.generate_button)

        self.generate_button.clicked.connect(self.submit)
        self.plot.mode.toggled.connect(self._plot_mode_changed)
        self.model.currentTextChanged.connect(self._model_changed)

    def _plot_mode_changed(self, on: bool) -> None:
        """Ctrl+Enter sends what the mode shows: its shortcut moves to Generate plot."""
        self.generate_button.setText("Generate" if on else GENERATE_TEXT)

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
            "negative_prompt": self.negative.text() if self.negative.isEnabled() else "",
            "width": self.width_box.value(),
            "height": self.height_box.value(),
            "steps": self.steps.value(),
            "guidance": self.guidance.value(),
            "scheduler": self.scheduler_name(),
            "loras": self.loras.loras(),
        }
        try:
            data = lift_lora_tags(data)  # <lora:NAME:WEIGHT> in the prompt, as A1111 takes it
        except RequestError as exc:
            errors[exc.field] = str(exc)
            data = {**data, **STAND_INS[exc.field]}
        request = _check_all(data, errors)
        served = self._served.get(request.model) if request is not None else None
        if request is not None and served is not None:
            try:
                check_family(request, served.family, served.negative_prompt, served.size_multiple)
            except RequestError as exc:
                errors[exc.field] = str(exc)
        for field, message in errors.items():
            self.show_error(field, message)
        return None if errors else request

    def submit(self) -> None:
        request = self.build_request()
        if request is not None:
            self.generate_requested.emit(request)

    def submit_shown(self) -> None:
        """What Ctrl+Enter does: the plot in plot mode, else the grid."""
        if self.plot.mode.isChecked():
            self.plot.submit()
        else:
            self.submit()

    def show_error(self, field: str, message: str) -> None:
        label = self.errors.get("seeds" if field == "items" else field, self.general_error)
        label.setText(message)
        label.setToolTip(message)
        label.setVisible(True)

    def clear_errors(self) -> None:
        for label in [*self.errors.values(), self.general_error]:
            label.clear()
            label.setVisible(False)

    def set_served_models(self, served: dict[str, ModelOffer]) -> None:
        """Model name -> what a worker serving it advertises (WorkersModel.serving())."""
        families = {model: offer.model_dump(include=FAMILY_FIELDS | {"loaded"}) for model, offer in served.items()}
        self._served = served
        if families == self._families:
            return
        self._families = families
        current = self.model.currentText()
        self.model.blockSignals(True)
        self.model.clear()
        for name, offer in served.items():  # loaded on a worker first (WorkersModel.serving()), in bold
            self.model.addItem(name)
            tip = "loaded on a worker" if offer.loaded else "loaded when a job needs it (the first job waits for it)"
            self.model.setItemData(self.model.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
            if offer.loaded:
                font = self.model.font()
                font.setBold(True)
                self.model.setItemData(self.model.count() - 1, font, Qt.ItemDataRole.FontRole)
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
        self.loras.set_loras(request.loras)
        self.clear_errors()

    def _model_changed(self, model: str) -> None:
        served = self._served.get(model.strip())
        if served is None:
            if self._served:
                self.show_error("model", f"model: no online worker serves {model!r}")
            return
        self.errors["model"].setVisible(False)
        self._follow_family(served)

    def _follow_family(self, served: ModelOffer) -> None:
        """Switch the controls to what the served model takes; values the user changed stay."""
        followed = served.model_dump(include=FAMILY_FIELDS)
        if followed == self._followed:
            return
        self._followed = followed
        current = self.scheduler_name()
        self._set_schedulers(served.schedulers)
        if current in served.schedulers:
            self.set_scheduler(current)
        label = FAMILY_LABELS.get(served.family, served.family)
        self.negative.setEnabled(served.negative_prompt)
        self.negative.setPlaceholderText(NEGATIVE_PLACEHOLDER if served.negative_prompt else "")
        self.negative.setToolTip("" if served.negative_prompt else f"{label} models take no negative prompt")
        defaults = {
            "width": served.default_width,
            "height": served.default_height,
            "steps": served.default_steps,
            "guidance": served.default_guidance,
        }
        boxes: dict[str, QSpinBox | QDoubleSpinBox] = {
            "width": self.width_box, "height": self.height_box, "steps": self.steps, "guidance": self.guidance,
        }  # fmt: skip
        for field, box in boxes.items():
            if abs(box.value() - self._defaults[field]) < 1e-6:
                box.setValue(defaults[field])  # type: ignore[arg-type]
            self._defaults[field] = _as_shown(box, defaults[field])
        for box in (self.width_box, self.height_box):
            multiple = max(1, served.size_multiple)
            box.setSingleStep(multiple)
            if box.value() % multiple:  # the nearest size this model takes
                box.setValue(min(max(round(box.value() / multiple) * multiple, L.MIN_SIZE), L.MAX_SIZE))

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
            "loras": self.loras.loras(),
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
        if isinstance(values.get("loras"), list):
            try:
                self.loras.set_loras([LoraRef.model_validate(lora) for lora in values["loras"]])
            except ValueError:
                pass
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


def _as_shown(box: QSpinBox | QDoubleSpinBox, value: float) -> float:
    """`value` as the box would hold it: within its range, at its decimals."""
    value = min(max(value, box.minimum()), box.maximum())
    return round(value, box.decimals()) if isinstance(box, QDoubleSpinBox) else value


def _spin(low: int, high: int, value: int, step: int = 1) -> QSpinBox:
    box = QSpinBox(minimum=low, maximum=high, singleStep=step)
    box.setValue(value)
    return box
