"""One labelled picture of a job's images: prompts as rows, seeds as columns."""

from collections.abc import Mapping

from PIL import Image, ImageDraw, ImageFont

from seedgrid.shared.request import JobRequest

# load_default() gives a FreeType font where Pillow has FreeType, else the basic bitmap font
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

BACKGROUND = (255, 255, 255)
PLACEHOLDER = (128, 128, 128)
TEXT = (0, 0, 0)
ELLIPSIS = "..."


def label_font_size(cell_width: int, cell_height: int) -> int:
    """Labels grow with the cells so they stay readable at any image size."""
    return max(10, min(cell_width, cell_height) // 20)


def _fit(text: str, font: Font, width: float, cut: bool = False) -> str:
    """`text` if it fits in `width` pixels (and not `cut`), else its longest prefix that fits with an ellipsis."""
    if not cut and font.getlength(text) <= width:
        return text
    short, long = 0, len(text)  # binary search: prefix text[:short] + ELLIPSIS fits
    while short < long:
        mid = (short + long + 1) // 2
        if font.getlength(text[:mid] + ELLIPSIS) <= width:
            short = mid
        else:
            long = mid - 1
    return text[:short] + ELLIPSIS


def _wrap(text: str, font: Font, width: float, max_lines: int) -> list[str]:
    """Greedy word wrap to `width` pixels, breaking long words, the last line cut with an ellipsis."""
    lines: list[str] = []
    words = text.split()
    while words and len(lines) < max_lines:
        line = words.pop(0)
        if font.getlength(line) > width:  # a word longer than the label: break it
            head = _fit(line, font, width, cut=True)[: -len(ELLIPSIS)] or line[:1]
            if line[len(head) :]:
                words.insert(0, line[len(head) :])
            line = head
        while words and font.getlength(f"{line} {words[0]}") <= width:
            line = f"{line} {words.pop(0)}"
        lines.append(line)
    if words and lines:
        lines[-1] = _fit(lines[-1], font, width, cut=True)
    return lines


def image_grid(
    images: list[Image.Image | None],
    rows: int,
    cols: int,
    col_labels: list[str] | None = None,
    row_labels: list[str] | None = None,
    *,
    cell_size: tuple[int, int] | None = None,
) -> Image.Image:
    """Paste equal-size images row by row into a rows x cols grid; None cells are grey placeholders.

    Column labels go in a margin above the grid, row labels in a fixed-width margin at its left.
    `cell_size` is only needed when every cell is None.
    """
    if rows < 1 or cols < 1:
        raise ValueError(f"rows, cols: need at least 1 x 1, got {rows} x {cols}")
    if len(images) != rows * cols:
        raise ValueError(f"images: got {len(images)}, expected rows x cols = {rows * cols}")
    if col_labels is not None and len(col_labels) != cols:
        raise ValueError(f"col_labels: got {len(col_labels)}, expected {cols}")
    if row_labels is not None and len(row_labels) != rows:
        raise ValueError(f"row_labels: got {len(row_labels)}, expected {rows}")
    sizes = {im.size for im in images if im is not None}
    if cell_size is not None:
        cell_w, cell_h = cell_size
        sizes.add((cell_w, cell_h))
    if len(sizes) != 1:
        problem = "differing sizes " + ", ".join(f"{w}x{h}" for w, h in sorted(sizes)) if sizes else "no image"
        raise ValueError(f"images: {problem}; all cells must have one size")
    cell_w, cell_h = sizes.pop()

    font_size = label_font_size(cell_w, cell_h)
    font = ImageFont.load_default(size=font_size)
    pad = font_size // 2
    line_h = font_size + font_size // 4
    top = line_h + 2 * pad if col_labels else 0
    left = max(cell_w // 2, 8 * font_size) if row_labels else 0

    grid = Image.new("RGB", (left + cols * cell_w, top + rows * cell_h), BACKGROUND)
    draw = ImageDraw.Draw(grid)
    for i, im in enumerate(images):
        x, y = left + (i % cols) * cell_w, top + (i // cols) * cell_h
        if im is None:
            draw.rectangle((x, y, x + cell_w - 1, y + cell_h - 1), fill=PLACEHOLDER)
        else:
            grid.paste(im if im.mode == "RGB" else im.convert("RGB"), (x, y))
    for c, label in enumerate(col_labels or []):
        text = _fit(label, font, cell_w - 2 * pad)
        label_x = left + c * cell_w + (cell_w - font.getlength(text)) / 2
        draw.text((label_x, pad), text, font=font, fill=TEXT)
    for r, label in enumerate(row_labels or []):
        max_lines = max(1, (cell_h - 2 * pad) // line_h)
        for n, line in enumerate(_wrap(label, font, left - 2 * pad, max_lines)):
            draw.text((pad, top + r * cell_h + pad + n * line_h), line, font=font, fill=TEXT)
    return grid


def grid_for_job(request: JobRequest, images_by_index: Mapping[int, Image.Image | None]) -> Image.Image:
    """The job's grid; images not made yet show as placeholders. Row labels only for differing prompts."""
    total = len(request.prompts) * len(request.seeds)
    outside = sorted(i for i in images_by_index if not 0 <= i < total)
    if outside:
        raise ValueError(f"images_by_index: indexes {outside[:5]} are outside 0..{total - 1}")
    present = [im for im in images_by_index.values() if im is not None]
    cell_size = present[0].size if present else (request.width, request.height)
    sizes = {im.size for im in present}
    if len(sizes) > 1:
        raise ValueError(f"images_by_index: images have differing sizes {sorted(sizes)}")
    labelled_rows = len(request.prompts) > 1 and len(set(request.prompts)) > 1
    return image_grid(
        [images_by_index.get(i) for i in range(total)],
        rows=len(request.prompts),
        cols=len(request.seeds),
        col_labels=[f"seed {s}" for s in request.seeds],
        row_labels=list(request.prompts) if labelled_rows else None,
        cell_size=cell_size,
    )
