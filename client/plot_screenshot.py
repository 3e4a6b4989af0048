"""Make a real plot (a private Redis and a local worker) and keep its plot.png: the README's picture.

python -m seedgrid.client.plot_screenshot --out docs/plot.png [--model tiny --device cpu]
"""

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from seedgrid.client.cli.main import main as seedgrid

PROMPT = "portrait photo of a old warrior chief"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("docs/plot.png"))
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cpu")
    parser.add_argument("--size", type=int, default=128, help="width and height of a cell (default: 128)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        status = seedgrid(
            ["plot", PROMPT, "--seeds", "1", "--x", "steps=4,8,12", "--y", "scheduler=euler_a,dpm++_2m",
             "--z", "sr=old,young", "--model", args.model, "--device", args.device, "--redis", "",
             "--width", str(args.size), "--height", str(args.size), "--out", folder]
        )  # fmt: skip
        if status:
            return status
        args.out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(folder) / "plot-z0.png", args.out)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
