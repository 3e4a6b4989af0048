"""The app's model list and LoRAs, offscreen with a real Redis: a worker of two models (one loaded) and two
LoRAs advertised by a heartbeat written into Redis directly (no worker process)."""

import uuid

import pytest
from PySide6.QtCore import Qt

from seedgrid.client.gui.main_window import MainWindow
from seedgrid.shared import limits as L
from seedgrid.shared import names
from seedgrid.shared.embedded_redis import EmbeddedRedis
from seedgrid.shared.redis_conn import connect
from seedgrid.shared.request import JobRequest, LoraRef
from seedgrid.shared.workers import ModelOffer, WorkerInfo

WAIT = 15_000
SCHEDULERS = list(L.SCHEDULER_NAMES)
HEARTBEAT = WorkerInfo(
    name="two-models", host="here", pid=1, model="b-model", device="cpu", schedulers=SCHEDULERS, max_batch=4,
    models=[ModelOffer(name="b-model", schedulers=SCHEDULERS, loaded=False),
            ModelOffer(name="a-model", schedulers=SCHEDULERS, loaded=True)],
    loras=["detail", "style_v2"],
)  # fmt: skip


@pytest.fixture
def win(qtbot, tmp_path):
    with EmbeddedRedis() as server:
        r = connect(server.url)
        r.set(names.worker_key(HEARTBEAT.name), HEARTBEAT.model_dump_json(), ex=60)
        r.sadd(names.WORKERS_KEY, HEARTBEAT.name)
        win = MainWindow(server.url, client_id=f"gui-{uuid.uuid4().hex[:8]}", history_dir=tmp_path / "history")
        qtbot.addWidget(win)
        win.show()
        try:
            qtbot.waitUntil(
                lambda: win.connected and win.compose.loras.available == ["detail", "style_v2"], timeout=WAIT
            )
            yield win
        finally:
            win.shutdown()
            r.close()


def test_the_model_list_shows_loaded_models_first_in_bold(win):
    combo = win.compose.model
    assert [combo.itemText(i) for i in range(combo.count())] == ["a-model", "b-model"]
    assert combo.itemData(0, Qt.ItemDataRole.FontRole).bold()
    assert combo.itemData(1, Qt.ItemDataRole.FontRole) is None
    assert "when a job needs it" in combo.itemData(1, Qt.ItemDataRole.ToolTipRole)


def test_loras_from_the_picker_and_from_lora_tags_in_the_prompt_go_into_the_request(win):
    c = win.compose
    c.model.setEditText("a-model")
    c.prompt.setPlainText("a castle on a hill, <lora:style_v2:-0.5>")
    row = c.loras.add("detail")
    row.slider.setValue(60)  # the slider moves the weight box: 0.6
    assert row.weight.value() == pytest.approx(0.6)
    request = c.build_request()
    assert request is not None
    assert request.prompts == ["a castle on a hill"]
    assert request.loras == [LoraRef(name="detail", weight=0.6), LoraRef(name="style_v2", weight=-0.5)]


def test_a_lora_weight_out_of_range_is_shown_at_the_loras_field_with_the_other_errors(win):
    c = win.compose
    c.prompt.setPlainText("a castle <lora:detail:9>")
    c.steps.setValue(L.MIN_STEPS)
    c.seeds.setText("nonsense")
    assert c.build_request() is None
    assert c.errors["loras"].isVisible() and c.errors["loras"].text().startswith("loras: weight 9 of 'detail'")
    assert c.errors["seeds"].isVisible()  # all errors at once


def test_restoring_a_request_puts_its_loras_in_the_picker_and_the_next_start_keeps_them(win):
    request = JobRequest(model="a-model", prompts=["x"], seeds=[3], loras=[LoraRef(name="style_v2", weight=1.25)])
    win.compose.load_request(request)
    assert win.compose.loras.loras() == [{"name": "style_v2", "weight": 1.25}]
    assert win.compose.build_request() == request
    win.compose.set_values(win.compose.values())  # kept for the next start, as the window does
    assert win.compose.loras.loras() == [{"name": "style_v2", "weight": 1.25}]
