"""Plot mode of the compose panel: up to three axes (X, Y, Z) over the request the compose fields describe, each a
setting and its values as the CLI takes them (`10-40:10`, `euler_a,dpm++_2m`). The cell count follows the typing;
every axis's error shows at its row, all at once, in room kept for it so nothing below moves."""

from collections.abc import Callable
from math import prod

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QGridLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from seedgrid.shared.job import JobState, JobStatus
from seedgrid.shared.plot import AXIS_NAMES, MAX_CELLS, Plot, make_plot
from seedgrid.shared.plot_axes import SETTINGS, parse_axis
from seedgrid.shared.request import JobRequest, RequestError, parse_request

ERROR_STYLE = "color: #c62828;"
SETTING_LABELS = {
    "seed": "Seed",
    "sr": "Prompt S/R",
    "negative": "Negative prompt",
    "steps": "Steps",
    "guidance": "Guidance",
    "scheduler": "Scheduler",
    "size": "Size",
    "model": "Model",
    "lora": "LoRA weight",
}
DEFAULT_SETTINGS = {"x": "steps", "y": "seed", "z": "scheduler"}
# a request field -> the axis setting that sweeps it, where a refusal of the field is shown
FIELD_SETTINGS = {"seeds": "seed", "negative_prompt": "negative", "width": "size", "height": "size", "loras": "lora"}
FIELD_SETTINGS.update({name: name for name in ("steps", "guidance", "scheduler", "model")})
ERROR_LINES = 2  # the room an axis's error keeps, shown or not; a longer one is cut (all of it in the tooltip)


class AxisRow:
    """One axis: its setting picker, its values field and the line under them for its error."""

    def __init__(self, name: str, layout: QGridLayout, row: int, changed: Callable[[], None]):
        self.name = name
        self.setting = QComboBox()
        for key, label in SETTING_LABELS.items():
            self.setting.addItem(label, key)
            self.setting.setItemData(self.setting.count() - 1, SETTINGS[key], 3)  # 3: the tooltip role
        self.values = QLineEdit()
        self.error = _error_label()
        layout.addWidget(QLabel(name.upper()), row, 0)
        layout.addWidget(self.setting, row, 1)
        layout.addWidget(self.values, row, 2)
        layout.addWidget(self.error, row + 1, 1, 1, 2)
        self.setting.currentIndexChanged.connect(self._setting_changed)
        self.set_axis(DEFAULT_SETTINGS[name], "")
        self._setting_changed()
        self.setting.currentIndexChanged.connect(changed)
        self.values.textChanged.connect(changed)

    def setting_name(self) -> str:
        return str(self.setting.currentData())

    def spec(self) -> str | None:
        """`steps=10,20` as make_plot takes it, or None while the values are empty (the axis is off)."""
        text = self.values.text().strip()
        return f"{self.setting_name()}={text}" if text else None

    def set_axis(self, setting: str, values: str) -> None:
        self.setting.setCurrentIndex(self.setting.findData(setting))
        self.values.setText(values)

    def show_error(self, message: str) -> None:
        self.error.setText(message)
        self.error.setToolTip(message)

    def _setting_changed(self) -> None:
        self.values.setPlaceholderText(SETTINGS[self.setting_name()])
        self.values.setToolTip(SETTINGS[self.setting_name()])


class PlotPanel(QWidget):
    plot_requested = Signal(object)  # a Plot, every axis checked

    def __init__(
        self,
        base_request: Callable[[], JobRequest | None],
        show_field_error: Callable[[str, str], None] | None = None,
        parent=None,
    ):
        """`base_request`: the compose fields' request, or None with their errors shown; `show_field_error`: where
        a refusal of a field no axis sweeps is shown (the compose panel's field)."""
        super().__init__(parent)
        self.base_request = base_request
        self.show_field_error = show_field_error
        self.seconds_per_image: float | None = None  # the last finished job's, for the time estimate
        self.mode = QCheckBox("Plot mode: sweep settings on X, Y, Z")
        self.axes = QWidget()
        grid = QGridLayout(self.axes)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setColumnStretch(2, 1)
        self.rows = {name: AxisRow(name, grid, 2 * i, self.update_count) for i, name in enumerate(AXIS_NAMES)}
        self.count = QLabel()
        self.general_error = _error_label()
        grid.addWidget(self.count, 2 * len(AXIS_NAMES), 0, 1, 3)
        grid.addWidget(self.general_error, 2 * len(AXIS_NAMES) + 1, 0, 1, 3)
        self.generate_button = QPushButton("Generate plot  (Ctrl+Enter)")  # placed by the compose panel
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.mode)
        layout.addWidget(self.axes)
        self.mode.toggled.connect(self.set_mode)
        self.generate_button.clicked.connect(self.submit)
        self.set_mode(False)
        self.update_count()

    def set_mode(self, on: bool) -> None:
        self.mode.setChecked(on)
        self.axes.setVisible(on)
        self.generate_button.setVisible(on)

    def specs(self) -> dict[str, str]:
        return {name: spec for name, row in self.rows.items() if (spec := row.spec()) is not None}

    def update_count(self) -> None:
        """The cell count as the axes stand, and each axis's syntax error at its row."""
        sizes = []
        for name, row in self.rows.items():
            spec = row.spec()
            try:
                sizes.append(len(parse_axis(spec, name).values) if spec else 1)
                row.show_error("")
            except RequestError as exc:
                row.show_error(str(exc))
                sizes.append(0)
        cells = prod(sizes)
        if not self.specs():
            self.count.setText("type the values of at least one axis")
        elif not cells:
            self.count.setText("cells: ? (an axis has an error)")
        else:
            text = f"{cells} cell{'s' * (cells != 1)}" + f" (at most {MAX_CELLS})" * (cells > MAX_CELLS)
            if self.seconds_per_image:
                text += f" · about {_duration(cells * self.seconds_per_image)} on one worker"
            self.count.setText(text)

    def note_speed(self, status: JobStatus) -> None:
        """A succeeded job's speed, for the estimate."""
        seconds = status.finished_at - status.started_at - status.load_seconds
        if status.state == JobState.SUCCEEDED and status.started_at and seconds > 0 and status.images_total:
            self.seconds_per_image = seconds / status.images_total
            self.update_count()

    def build_plot(self) -> Plot | None:
        """The plot the compose fields and the axes describe, or None with every problem shown where it is."""
        for row in self.rows.values():
            row.show_error("")
        self.general_error.setText("")
        base = self.base_request()
        specs = self.specs()
        errors: dict[str, str] = {}
        for name, spec in specs.items():
            try:
                if base is None:
                    parse_axis(spec, name)
                else:
                    make_plot(_one_seed(base), **{name: spec})
            except RequestError as exc:
                errors[name] = str(exc)
        if base is None:
            errors[""] = "fix the fields above first"
        elif not specs:
            errors[""] = "type the values of at least one axis"
        plot = None
        if base is not None and not errors:
            try:
                plot = make_plot(_one_seed(base), **specs)
            except RequestError as exc:  # axes that clash, or too many cells
                where = next((n for n in specs if str(exc).startswith(f"{n} ")), "")
                errors[where] = str(exc)
        for name, message in errors.items():
            if name:
                self.rows[name].show_error(message)
            else:
                self.general_error.setText(message)
        return plot

    def show_refusal(self, field: str, message: str) -> None:
        """A submitted plot refused (a model no worker serves, a LoRA none allows): at the axis sweeping the
        field, else at the field."""
        setting = FIELD_SETTINGS.get(field)
        row = next((r for r in self.rows.values() if r.spec() and r.setting_name() == setting), None)
        if row is not None:
            row.show_error(f"{row.name} {setting}: {message}")
        elif field and self.show_field_error is not None:
            self.show_field_error(field, message)
        else:
            self.general_error.setText(message)

    def submit(self) -> None:
        plot = self.build_plot()
        if plot is not None:
            self.plot_requested.emit(plot)


def _one_seed(base: JobRequest) -> JobRequest:
    """The compose fields may hold several seeds; a plot's base takes the first (a seed axis varies it)."""
    return parse_request({**base.model_dump(), "seeds": base.seeds[:1]})


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def _error_label() -> QLabel:
    label = QLabel(wordWrap=True)
    label.setStyleSheet(ERROR_STYLE)
    label.setFixedHeight(label.fontMetrics().lineSpacing() * ERROR_LINES + 2)
    return label
