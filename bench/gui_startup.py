"""Startup of the desktop app on a large saved history: seconds to the first painted window, peak memory.

    python -m bench.gui_startup [--grids 50] [--images 32] [--size 64] [--baseline DIR]

Builds the history in a temporary folder (request.json and one PNG per image: what every version of the
app reads), then starts the app offscreen on it in a fresh process, against a Redis that refuses
connections (startup must not wait for Redis). `--baseline DIR`: also run an older checkout of the
package (DIR/seedgrid/{shared,worker,client}) on a copy of the same history, first."""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

SETTLE_S = 3.0  # after the first paint: background loading (thumbnails, the shown grid) counts in the peak
NO_REDIS = "redis://127.0.0.1:1/0"


def build_history(root: Path, grids: int, images: int, size: int) -> None:
    from PIL import Image

    from seedgrid.shared.pngmeta import encode_png
    from seedgrid.shared.request import JobRequest

    for n in range(grids):
        request = JobRequest(
            model="tiny", prompts=[f"saved grid {n}"], seeds=list(range(images)), width=size, height=size, steps=4
        )
        folder = root / uuid.uuid4().hex
        folder.mkdir(parents=True)
        (folder / "request.json").write_text(request.model_dump_json())
        for item in request.items():
            image = Image.effect_noise((size, size), 40 + item.index).convert("RGB")  # noise: photo-sized PNGs
            (folder / f"{item.index:03d}.png").write_bytes(encode_png(image, request, item))


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(history: str) -> None:
    """Start the app on `history`; print seconds to the first paint and peak memory as JSON."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEvent, QObject, QTimer
    from PySide6.QtWidgets import QApplication

    from seedgrid.client.gui.main_window import MainWindow

    app = QApplication(["seedgrid-bench"])
    result: dict[str, float] = {"peak_mib_before": peak_mib()}

    class FirstPaint(QObject):
        def eventFilter(self, watched, event) -> bool:
            if event.type() == QEvent.Type.Paint and "first_paint_s" not in result:
                result["first_paint_s"] = time.perf_counter() - start
                result["peak_mib_at_paint"] = peak_mib()
                QTimer.singleShot(int(SETTLE_S * 1000), app.quit)
            return False

    watcher = FirstPaint()
    app.installEventFilter(watcher)
    start = time.perf_counter()
    window = MainWindow(NO_REDIS, client_id="bench", history_dir=Path(history))
    result["constructed_s"] = time.perf_counter() - start
    window.show()
    app.exec()
    window.shutdown()
    result["peak_mib"] = peak_mib()
    print(json.dumps(result), flush=True)
    os._exit(0)  # skip interpreter teardown: PySide6 may crash collecting thousands of QImages there


def run(history: Path, package_root: str | None) -> dict:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    if package_root:
        env["PYTHONPATH"] = os.pathsep.join([package_root, env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, "-m", "bench.gui_startup", "--child", str(history)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", type=int, default=50)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--baseline", help="a folder holding an older seedgrid package, measured first")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        built = Path(tmp) / "built"
        began = time.perf_counter()
        build_history(built, args.grids, args.images, args.size)
        print(
            f"history: {args.grids} grids x {args.images} images, {args.size}x{args.size} PNGs, "
            f"{sum(p.stat().st_size for p in built.rglob('*.png')) / 2**20:.1f} MiB "
            f"(built in {time.perf_counter() - began:.1f} s)"
        )
        for label, package_root in [("baseline", args.baseline), ("current", None)]:
            if label == "baseline" and not package_root:
                continue
            history = Path(tmp) / label
            shutil.copytree(built, history)  # each run on an untouched copy (the app writes thumbnails)
            r = run(history, package_root)
            print(
                f"{label:>8}: first painted window {r['first_paint_s']:.2f} s (window built in "
                f"{r['constructed_s']:.2f} s); peak memory {r['peak_mib_at_paint']:.0f} MiB at the first paint, "
                f"{r['peak_mib']:.0f} MiB {SETTLE_S:g} s later (process with Qt loaded: {r['peak_mib_before']:.0f} MiB)"
            )


if __name__ == "__main__":
    main()
