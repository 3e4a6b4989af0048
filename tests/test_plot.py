"""Plots and dynamic prompts in-process: axes as people type them, expansion into few jobs, bounds
refused naming the axis or the prompt, the plot picture, and the CLI refusing before anything starts."""

import json

import pytest
from PIL import Image

from seedgrid.client.cli.main import main
from seedgrid.client.plot_save import plot_json
from seedgrid.client.plots import SubmittedPlot, plot_progress
from seedgrid.shared.dynamic_prompts import PromptError, expand_prompts
from seedgrid.shared.job import JobState, JobStatus
from seedgrid.shared.plot import axes_json, make_plot, plot_from_json
from seedgrid.shared.plot_axes import parse_axis
from seedgrid.shared.plot_image import plot_image
from seedgrid.shared.request import JobRequest, LoraRef, RequestError

BASE = JobRequest(prompts=["a red cube on a table"], seeds=[1], width=64, height=64, steps=2)


def test_axis_values_ranges_and_quotes():
    assert parse_axis("steps=10-40:10").values == (10, 20, 30, 40)
    assert parse_axis("steps=40-10:15, 3").values == (40, 25, 10, 3)
    assert parse_axis("guidance=3-9:1.5").values == (3.0, 4.5, 6.0, 7.5, 9.0)
    assert parse_axis("cfg=7").setting == "guidance"
    assert parse_axis("seed=0-3,42").values == (0, 1, 2, 3, 42)
    assert parse_axis("size=512x512, 768X512").values == ((512, 512), (768, 512))
    assert parse_axis('sr=red,"blue, dark",green').values == ("red", "blue, dark", "green")
    assert parse_axis("scheduler=euler_a,dpm++_2m").labels() == ["euler_a", "dpm++_2m"]


def test_a_3x2_plot_is_six_cells_each_its_own_job_at_its_coordinates():
    plot = make_plot(BASE, "steps=2,3,4", "scheduler=euler,ddim")
    assert plot.shape == (3, 2, 1) and len(plot.cells) == 6 and len(plot.jobs) == 6
    for cell, place in zip(plot.cells, plot.placements, strict=True):
        assert (cell.request.steps, cell.request.scheduler) == ((2, 3, 4)[cell.x], ("euler", "ddim")[cell.y])
        job = plot.jobs[place.job]
        assert (job.steps, job.scheduler, job.items()[place.index].seed) == (
            cell.request.steps,
            cell.request.scheduler,
            1,
        )


def test_seed_and_sr_axes_fold_into_one_job_and_each_cell_finds_its_item():
    plot = make_plot(BASE, "seed=5-7", "sr=red,blue,green", "guidance=3,9")
    assert plot.shape == (3, 3, 2) and len(plot.jobs) == 2  # one job per guidance: 3 prompts x 3 seeds
    assert plot.jobs[0].prompts == ["a red cube on a table", "a blue cube on a table", "a green cube on a table"]
    assert plot.jobs[0].seeds == [5, 6, 7]
    for cell, place in zip(plot.cells, plot.placements, strict=True):
        item = plot.jobs[place.job].items()[place.index]
        assert (item.prompt, item.seed) == (cell.request.prompts[0], cell.request.seeds[0])
        assert plot.jobs[place.job].guidance == (3.0, 9.0)[cell.z]


def test_sr_also_replaces_in_the_negative_prompt_and_big_seed_axes_split_into_jobs():
    plot = make_plot(BASE.model_copy(update={"negative_prompt": "red blur"}), "sr=red,blue")
    assert [c.request.negative_prompt for c in plot.cells] == ["red blur", "blue blur"]
    big = make_plot(BASE, "seed=0-299")
    assert [len(j.seeds) for j in big.jobs] == [256, 44]
    assert big.placements[299].job == 1 and big.placements[299].index == 43


@pytest.mark.parametrize(
    "axes, message",
    [
        (
            ["colour=1,2"],
            "--x: unknown setting 'colour'; known: seed, sr, negative, steps, guidance, scheduler, size, model, lora",
        ),
        (["steps=2", "vae=a,b"], "--y: a worker's VAE (seedgrid worker --vae) is not a job setting"),
        (["lora=detail:0.5,detail:9"], "--x lora: weight 9 of 'detail' is out of range"),
        (["lora=detail:x"], "--x lora: 'detail:x' is not NAME or NAME:WEIGHT"),
        (["model=tiny,bad name"], "--x model: 'bad name' is not a valid model name"),
        (["steps=2,1000"], "--x steps: 1000 is out of range (allowed: an integer from 1 to 150)"),
        (["steps=2", "scheduler=fast"], "--y scheduler: unknown scheduler 'fast'"),
        (["steps=2", "guidance=3", "size=500x64"], "--z size: 500x64 is out of range"),
        (["seed=0-99", "steps=1-20"], "axes: --x seed (100) x --y steps (20) make 2000 cells (at most 1024)"),
        (["sr=purple,blue"], "--x sr: 'purple' is not in the prompt"),
        (["steps=2", "steps=3"], "--y steps: --x already sweeps steps"),
        (["guidance=1-5:0"], "--x guidance: range '1-5:0' has a step of 0"),
        (["steps"], "--x: 'steps' is not SETTING=VALUES"),
    ],
)
def test_bad_axes_are_refused_naming_the_axis(axes, message):
    with pytest.raises(RequestError) as caught:
        make_plot(BASE, *axes, flag="--")
    assert str(caught.value).startswith(message), str(caught.value)


def test_model_and_lora_axes_make_a_job_per_model_and_lora_setting():
    base = BASE.model_copy(update={"loras": [LoraRef(name="style", weight=0.7), LoraRef(name="detail", weight=1.0)]})
    plot = make_plot(base, "model=tiny,tiny-xl", "lora=detail:0.5,none", flag="--")
    assert plot.shape == (2, 2, 1) and plot.labels("y") == ["detail:0.5", "(none)"] and plot.title("y") == "LoRA"
    got = {(c.x, c.y): (c.request.model, [(lora.name, lora.weight) for lora in c.request.loras]) for c in plot.cells}
    assert got == {
        (0, 0): ("tiny", [("style", 0.7), ("detail", 0.5)]),  # the axis sets its LoRA; the others stay
        (1, 0): ("tiny-xl", [("style", 0.7), ("detail", 0.5)]),
        (0, 1): ("tiny", [("style", 0.7)]),
        (1, 1): ("tiny-xl", [("style", 0.7)]),
    }
    assert len(plot.jobs) == 4  # models and LoRA sets never share a batch
    assert plot.cells[0].settings()["loras"] == [{"name": "style", "weight": 0.7}, {"name": "detail", "weight": 0.5}]


def test_dynamic_prompts_every_combination_nested_and_escaped():
    assert expand_prompts(["a {red|blue} car {|at night}"]) == [
        "a red car",
        "a red car at night",
        "a blue car",
        "a blue car at night",
    ]
    assert expand_prompts(["a {red|{dark|light} blue} car", "plain | text \\{x\\}"]) == [
        "a red car",
        "a dark blue car",
        "a light blue car",
        "plain | text {x}",
    ]


def test_prompt_samples_are_seeded_and_wildcards_come_from_the_folder(tmp_path):
    prompt = ["a {red|blue|green|gold|pink|grey} car"]
    picks = expand_prompts(prompt, samples=20, seed=3)
    assert picks == expand_prompts(prompt, samples=20, seed=3) and len(picks) == 20
    assert picks != expand_prompts(prompt, samples=20, seed=4) and set(picks) <= set(expand_prompts(prompt))
    (tmp_path / "shape.txt").write_text("# shapes\n\ncube\n")
    (tmp_path / "thing.txt").write_text("{big|small} __shape__\n")
    red, blue = expand_prompts(["a {red|blue} __thing__"], seed=1, wildcards=tmp_path)  # a pick per combination
    assert red in ("a red big cube", "a red small cube") and blue in ("a blue big cube", "a blue small cube")
    assert expand_prompts(["__thing__"], samples=4, seed=9, wildcards=tmp_path) == expand_prompts(
        ["__thing__"], samples=4, seed=9, wildcards=tmp_path
    )


@pytest.mark.parametrize(
    "prompts, message",
    [
        (["ok", "a {red|blue"], "prompt 2 'a {red|blue': a { has no closing }"),
        (["a } b"], "prompt 1 'a } b': a } at character 3 has no { before it"),
        (["{a|b}" * 9], "prompt 1 '{a|b}{a|b}{a|b}{a|b}{a|b}{a|b}{a|b}{a...': expands to more than 256 prompts"),
        (["a __nope__"], "prompt 1 'a __nope__': __nope__ needs nope.txt in the wildcards folder"),
        (["{a|b}"] * 200, "the prompts expand to more than 256 prompts (from prompt 129 on)"),
    ],
)
def test_bad_dynamic_prompts_are_one_line_naming_the_prompt(prompts, message, tmp_path):
    with pytest.raises(PromptError) as caught:
        expand_prompts(prompts, wildcards=tmp_path)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_plot_over_sizes_and_loras_goes_to_json_and_comes_back_the_same():
    """Before: plot.json could not be written for a LoRA axis (a LoraRef is not JSON), after the plot had run."""
    plot = make_plot(BASE, x="lora=detail:0.5,none", y="size=64x64,96x64", z="seed=1,2")
    submitted = SubmittedPlot("p" * 32, plot, [f"{i:032x}" for i in range(len(plot.jobs))])
    written = json.loads(json.dumps(plot_json(submitted, [None] * len(plot.cells), {})))
    assert written["axes"][0]["values"] == [{"name": "detail", "weight": 0.5}, {"name": "", "weight": 0.0}]
    again = plot_from_json(BASE, json.loads(json.dumps(axes_json(plot))))
    assert again == plot


@pytest.mark.parametrize("axes", [[{"axis": "x", "setting": "colour", "values": [1]}], [{"axis": "w"}], "x"])
def test_axes_json_that_makes_no_plot_is_a_value_error(axes):
    with pytest.raises(ValueError):
        plot_from_json(BASE, axes)


def test_plot_picture_has_title_and_label_margins_and_grey_cells_not_made():
    plot = make_plot(BASE, "steps=2,3,4", "scheduler=euler,ddim", "guidance=3,9")
    images = [Image.new("RGB", (64, 64), (200, 0, 0)) if c.x != 1 else None for c in plot.cells]
    picture = plot_image(plot, images, z=1)
    assert picture.width > 3 * 64 and picture.height > 2 * 64
    top_left = picture.crop((0, 0, picture.width, picture.height - 2 * 64)).convert("L")
    assert top_left.getextrema()[0] < 100  # dark text: the titles and value labels
    right = picture.crop((picture.width - 64, picture.height - 64, picture.width, picture.height))
    middle = picture.crop((picture.width - 128, picture.height - 64, picture.width - 64, picture.height))
    assert right.getpixel((5, 5)) == (200, 0, 0) and middle.getpixel((5, 5)) == (128, 128, 128)


def test_plot_progress_counts_cells_rate_and_time_left():
    plot = make_plot(BASE, "seed=0-3", "steps=2,4")  # two jobs of 4 images
    submitted = SubmittedPlot("p", plot, ["a", "b"], submitted_at=100.0)
    statuses = {
        "a": JobStatus(job_id="a", state=JobState.SUCCEEDED, images_done=4, images_total=4, started_at=100.0),
        "b": JobStatus(
            job_id="b", state=JobState.RUNNING, images_done=0, images_total=4, step=2, steps=4, batch_size=4,
            started_at=102.0,
        ),
    }  # fmt: skip
    p = plot_progress(submitted, statuses, now=104.0)
    assert (p.cells_done, p.cells_total, p.images_done, p.images_total, p.finished) == (6, 8, 6.0, 8, False)
    assert p.images_per_second == pytest.approx(1.5) and p.seconds_left == pytest.approx(2 / 1.5)


def test_cli_refuses_bad_plots_and_prompts_in_one_line_before_starting_anything(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("SEEDGRID_REDIS_URL", raising=False)
    out = tmp_path / "out"
    for argv, line in [
        (["plot", "a cube", "--x", "colour=red"], "seedgrid plot: --x: unknown setting 'colour'; known: "),
        (["plot", "a cube", "--x", "steps=2,999"], "seedgrid plot: --x steps: 999 is out of range"),
        (["plot", "a cube", "--x", "seed=0-49", "--y", "steps=1-40"], "seedgrid plot: axes: --x seed (50) x "),
        (["plot", "a {red|blue} cube", "--x", "steps=2"], "seedgrid plot: prompts x seeds: a plot takes one"),
        (["generate", "a {red|blue cube"], "seedgrid generate: PROMPT/--prompt: prompt 1 'a {red|blue cube': a {"),
        (["generate", "a {red|blue} cube", "--prompt-samples", "0"], "seedgrid generate: PROMPT/--prompt: "),
    ]:
        assert main([*argv, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(line) and err.count("\n") == 1, err
    assert not out.exists()
