"""A plot's picture for one Z value: the cells in a grid, value labels on the top and left edges,
the X axis title above them, the Y axis title turned along the left edge, and the Z value on top."""

from PIL import Image, ImageDraw, ImageFont

from seedgrid.shared.grid import BACKGROUND, TEXT, image_grid, label_font_size
from seedgrid.shared.plot import AXIS_NAMES, Plot


def _title_band(text: str, width: int, font_size: int, start: int = 0, end: int = 0) -> Image.Image:
    """A line of text centred between `start` and `width - end`."""
    font = ImageFont.load_default(size=font_size)
    pad = font_size // 2
    band = Image.new("RGB", (width, font_size + font_size // 4 + 2 * pad), BACKGROUND)
    draw = ImageDraw.Draw(band)
    draw.text((start + (width - end - start - font.getlength(text)) / 2, pad), text, font=font, fill=TEXT)
    return band


def plot_image(plot: Plot, images: list[Image.Image | None], z: int = 0) -> Image.Image:
    """The picture of layer `z`; `images` holds one image (or None, not made) per cell of the plot."""
    cols, rows, layers = plot.shape
    if len(images) != len(plot.cells):
        raise ValueError(f"images: got {len(images)}, expected one per cell ({len(plot.cells)})")
    layer = images[z * rows * cols : (z + 1) * rows * cols]
    size = next((im.size for im in layer if im is not None), (plot.base.width, plot.base.height))
    layer = [im if im is None or im.size == size else im.resize(size) for im in layer]  # a size axis
    has = {name: plot.axis(name) is not None for name in AXIS_NAMES}
    grid = image_grid(
        layer,
        rows,
        cols,
        col_labels=plot.labels("x") if has["x"] else None,
        row_labels=plot.labels("y") if has["y"] else None,
        cell_size=size,
    )
    font_size = label_font_size(*size)
    row_labels = grid.width - cols * size[0]  # the width of the value labels at the left
    col_labels = grid.height - rows * size[1]
    bands = []
    if has["z"]:
        bands.append(_title_band(f"{plot.title('z')} = {plot.labels('z')[z]}", grid.width, font_size, row_labels))
    if has["x"]:
        bands.append(_title_band(plot.title("x"), grid.width, font_size, row_labels))
    left = 0
    if has["y"]:  # turned to read upwards, centred along the rows
        y_title = _title_band(plot.title("y"), grid.height, font_size, end=col_labels).rotate(90, expand=True)
        left = y_title.width
    top = sum(b.height for b in bands)
    out = Image.new("RGB", (left + grid.width, top + grid.height), BACKGROUND)
    offset = 0
    for band in bands:
        out.paste(band, (left, offset))
        offset += band.height
    if has["y"]:
        out.paste(y_title, (0, top))
    out.paste(grid, (left, top))
    return out
