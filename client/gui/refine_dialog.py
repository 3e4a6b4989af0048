"""Refine: the seed is pinned and the prompt varied, one prompt per line."""

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPlainTextEdit, QVBoxLayout

from seedgrid.shared import limits as L


class RefineDialog(QDialog):
    def __init__(self, prompt: str, seed: int, parent=None):
        super().__init__(parent)
        self.setWindowTitle(f"Refine seed {seed}")
        self.seed = seed
        self.editor = QPlainTextEdit()
        self.editor.setPlainText(prompt)
        self.error = QLabel(wordWrap=True)
        self.error.setStyleSheet("color: #c62828;")
        self.error.setVisible(False)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"One prompt per line; each is made at seed {seed} and becomes a row of the grid."))
        layout.addWidget(self.editor)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.resize(640, 320)

    def prompts(self) -> list[str]:
        return [line.strip() for line in self.editor.toPlainText().splitlines() if line.strip()]

    def accept(self) -> None:
        count = len(self.prompts())
        if not 1 <= count <= L.MAX_PROMPTS:
            self.error.setText(f"prompts: {count} lines (allowed: {L.FIELD_RULES['prompts']})")
            self.error.setVisible(True)
            return
        super().accept()
