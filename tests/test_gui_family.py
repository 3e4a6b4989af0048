"""The compose panel follows the chosen model's family as its workers' heartbeats say: offscreen, a real Redis,
heartbeats written into it directly (no worker process)."""

import uuid

import pytest

from seedgrid.client.gui.main_window import MainWindow
from seedgrid.shared import limits as L
from seedgrid.shared import names
from seedgrid.shared.embedded_redis import EmbeddedRedis
from seedgrid.shared.jobstore import JobStore
from seedgrid.shared.redis_conn import connect
from seedgrid.shared.workers import WorkerInfo

WAIT = 15_000
SD_MODEL, FLUX_MODEL = "tiny", "flux-like"
HEARTBEATS = [
    WorkerInfo(name="sd-worker", host="here", pid=1, model=SD_MODEL, device="cpu",
               schedulers=list(L.SCHEDULER_NAMES), max_batch=4),
    WorkerInfo(name="flux-worker", host="here", pid=2, model=FLUX_MODEL, device="cpu", schedulers=["euler"],
               max_batch=4, family="flux", default_width=1024, default_height=768, default_steps=4,
               default_guidance=0.0, negative_prompt=False, size_multiple=16),
]  # fmt: skip


@pytest.fixture
def win(qtbot, tmp_path):
    with EmbeddedRedis() as server:
        r = connect(server.url)
        for info in HEARTBEATS:
            r.set(names.worker_key(info.name), info.model_dump_json(), ex=60)
            r.sadd(names.WORKERS_KEY, info.name)
        win = MainWindow(server.url, client_id=f"gui-{uuid.uuid4().hex[:8]}", history_dir=tmp_path / "history")
        qtbot.addWidget(win)
        win.show()
        try:
            qtbot.waitUntil(lambda: win.connected and len(win.workers.models()) == 2, timeout=WAIT)
            win.store = JobStore(r)
            yield win
        finally:
            win.shutdown()
            r.close()


def controls(win: MainWindow) -> dict:
    c = win.compose
    return {
        "negative": c.negative.isEnabled(),
        "size": (c.width_box.value(), c.height_box.value()),
        "steps": c.steps.value(),
        "guidance": c.guidance.value(),
        "schedulers": [c.scheduler.itemData(i) for i in range(c.scheduler.count())],
        "size_step": (c.width_box.singleStep(), c.height_box.singleStep()),
    }


def test_the_controls_switch_with_the_models_family_and_a_flux_submit_has_no_negative_prompt(win, qtbot):
    c = win.compose
    c.model.setEditText(SD_MODEL)
    sd = {"negative": True, "size": (512, 512), "steps": 20, "guidance": 7.5}
    assert controls(win) == {**sd, "schedulers": list(L.SCHEDULER_NAMES), "size_step": (8, 8)}
    c.negative.setText("blurry")

    c.model.setEditText(FLUX_MODEL)
    flux = {"negative": False, "size": (1024, 768), "steps": 4, "guidance": 0.0}
    assert controls(win) == {**flux, "schedulers": ["euler"], "size_step": (16, 16)}
    assert c.negative.toolTip() == "Flux models take no negative prompt"

    c.model.setEditText(SD_MODEL)  # back: the negative prompt is there again, as typed
    assert controls(win)["negative"] and c.negative.text() == "blurry" and controls(win)["size"] == (512, 512)
    c.steps.setValue(9)  # changed by the user: kept across models; the rest follow the family
    c.width_box.setValue(520)  # not a multiple of 16: the nearest that is
    c.model.setEditText(FLUX_MODEL)
    assert controls(win)["steps"] == 9 and controls(win)["size"] == (512, 768)

    sent = []
    c.generate_requested.connect(sent.append)
    c.prompt.setPlainText("a fox in the snow")
    c.seeds.setText("0")
    c.submit()
    assert len(sent) == 1 and sent[0].model == FLUX_MODEL and sent[0].negative_prompt == ""
    qtbot.waitUntil(lambda: win.current_grid is not None, timeout=WAIT)
    stored = win.store.status(win.current_grid.job_id)
    assert stored.request.model == FLUX_MODEL and stored.request.negative_prompt == ""
