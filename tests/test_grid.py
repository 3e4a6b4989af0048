import pytest
from PIL import Image, ImageChops

from seedgrid.shared.grid import PLACEHOLDER, grid_for_job, image_grid
from seedgrid.shared.request import JobRequest

W, H = 64, 80


def solid(i: int, size=(W, H)) -> Image.Image:
    return Image.new("RGB", size, (i * 40 % 256, 100, 255 - i * 30 % 256))


def patterned(size=(W, H)) -> Image.Image:
    im = Image.new("RGB", size)
    im.putdata([(x * 4 % 256, y * 5 % 256, (x + y) % 256) for y in range(size[1]) for x in range(size[0])])
    return im


def cell(grid: Image.Image, left: int, top: int, row: int, col: int) -> Image.Image:
    return grid.crop((left + col * W, top + row * H, left + (col + 1) * W, top + (row + 1) * H))


def is_blank(im: Image.Image) -> bool:
    return im.convert("L").getextrema() == (255, 255)


def test_unlabelled_grid_is_exactly_the_cells():
    images = [solid(i) for i in range(6)]
    images[4] = patterned()
    grid = image_grid(images, rows=2, cols=3)
    assert grid.size == (3 * W, 2 * H)
    assert ImageChops.difference(cell(grid, 0, 0, 1, 1), images[4]).getbbox() is None
    assert cell(grid, 0, 0, 0, 2).getpixel((5, 5)) == images[2].getpixel((0, 0))


def test_labels_add_margins_and_cells_move_by_them():
    images = [solid(i) for i in range(4)]
    images[3] = patterned()
    grid = image_grid(images, 2, 2, col_labels=["seed 1", "seed 2"], row_labels=["a fox", "a very long prompt " * 20])
    left, top = grid.width - 2 * W, grid.height - 2 * H
    assert left > 0 and top > 0
    assert ImageChops.difference(cell(grid, left, top, 1, 1), images[3]).getbbox() is None
    assert not is_blank(grid.crop((left, 0, left + W, top)))  # "seed 1" above column 0
    assert not is_blank(grid.crop((0, top, left, top + H)))  # row label left of row 0
    assert not is_blank(grid.crop((0, top + H, left, top + 2 * H)))
    assert is_blank(grid.crop((0, 0, left, top)))  # the corner stays empty


def test_col_labels_only_add_a_top_margin():
    grid = image_grid([solid(0), solid(1)], 1, 2, col_labels=["seed 3", "seed 4"])
    top = grid.height - H
    assert grid.width == 2 * W and top > 0
    assert not is_blank(grid.crop((W, 0, 2 * W, top)))


def test_none_cells_are_grey_placeholders():
    grid = image_grid([solid(0), None, None, solid(3)], 2, 2)
    assert cell(grid, 0, 0, 0, 1).getcolors() == [(W * H, PLACEHOLDER)]
    assert cell(grid, 0, 0, 1, 0).getcolors() == [(W * H, PLACEHOLDER)]
    assert cell(grid, 0, 0, 1, 1).getpixel((0, 0)) == solid(3).getpixel((0, 0))


def test_all_placeholders_need_a_cell_size():
    assert image_grid([None, None], 1, 2, cell_size=(W, H)).size == (2 * W, H)
    with pytest.raises(ValueError, match="images"):
        image_grid([None, None], 1, 2)


def test_rgba_images_are_pasted_as_rgb():
    grid = image_grid([Image.new("RGBA", (W, H), (1, 2, 3, 255))], 1, 1)
    assert grid.mode == "RGB" and grid.getpixel((0, 0)) == (1, 2, 3)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(images=[solid(0)] * 3, rows=2, cols=2), "images"),
        (dict(images=[solid(0), solid(1, (W, W))], rows=1, cols=2), "images"),
        (dict(images=[solid(0)] * 2, rows=1, cols=2, col_labels=["one"]), "col_labels"),
        (dict(images=[solid(0)] * 2, rows=2, cols=1, row_labels=["a", "b", "c"]), "row_labels"),
        (dict(images=[], rows=0, cols=0), "rows"),
    ],
)
def test_wrong_counts_and_sizes_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        image_grid(**kwargs)


def test_grid_for_job_lays_prompts_as_rows_and_seeds_as_columns():
    request = JobRequest(prompts=["a fox", "a cat"], seeds=[3, 4, 5], width=W, height=H)
    images = {i: solid(i) for i in range(6) if i != 4}
    images[5] = patterned()
    grid = grid_for_job(request, images)
    left, top = grid.width - 3 * W, grid.height - 2 * H
    assert left > 0 and top > 0
    assert ImageChops.difference(cell(grid, left, top, 1, 2), images[5]).getbbox() is None
    assert cell(grid, left, top, 1, 1).getcolors() == [(W * H, PLACEHOLDER)]
    assert cell(grid, left, top, 0, 1).getpixel((0, 0)) == solid(1).getpixel((0, 0))


def test_grid_for_job_has_no_row_labels_for_one_prompt_or_repeated_prompts():
    for prompts in (["a fox"], ["a fox", "a fox"]):
        request = JobRequest(prompts=prompts, seeds=[3, 4], width=W, height=H)
        grid = grid_for_job(request, {0: solid(0)})
        assert grid.width == 2 * W
        assert grid.height > len(prompts) * H  # the "seed N" labels are still there


def test_grid_for_job_with_no_images_yet_uses_the_request_size():
    request = JobRequest(prompts=["a fox"], seeds=[1], width=W, height=H)
    assert grid_for_job(request, {}).width == W


def test_grid_for_job_refuses_bad_indexes_and_sizes():
    request = JobRequest(prompts=["a fox"], seeds=[1, 2], width=W, height=H)
    with pytest.raises(ValueError, match="images_by_index"):
        grid_for_job(request, {2: solid(0)})
    with pytest.raises(ValueError, match="images_by_index"):
        grid_for_job(request, {0: solid(0), 1: solid(1, (W, W))})
