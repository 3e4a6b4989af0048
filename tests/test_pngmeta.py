import io
import json

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from seedgrid.shared.pngmeta import PngMetadata, encode_png, parameters_text, read_png_metadata
from seedgrid.shared.request import JobRequest, LoraRef, RequestError


def small_image(color=(10, 20, 30)) -> Image.Image:
    return Image.new("RGB", (8, 8), color)


def png_with_text(**chunks: str) -> bytes:
    info = PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    out = io.BytesIO()
    small_image().save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def full_request(**changes) -> JobRequest:
    fields = dict(
        model="sd-1.5/base",
        prompts=["a red fox", "ein Fuchs im Schnee ❄ 狐"],
        seeds=[1, 4294967295],
        negative_prompt="blurry, ugly ✗",
        width=640,
        height=384,
        steps=33,
        guidance=6.25,
        scheduler="euler_a",
    )
    return JobRequest(**{**fields, **changes})


def test_parameters_text_is_exact_a1111_style():
    request = JobRequest(prompts=["a cat"], seeds=[1], negative_prompt="dog")
    text = parameters_text(request, request.items()[0])
    assert text == (
        "a cat\nNegative prompt: dog\nSteps: 20, Sampler: DPM++ 2M, CFG scale: 7.5, Seed: 1, Size: 512x512, Model: tiny"
    )


def test_parameters_text_omits_empty_negative_and_uses_model_label():
    request = JobRequest(prompts=["a cat"], seeds=[7], guidance=7.0, scheduler="euler")
    text = parameters_text(request, request.items()[0], model_label="Tiny SD, v2")
    assert text == 'a cat\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 7, Size: 512x512, Model: "Tiny SD, v2"'


def test_karras_is_written_as_schedule_type_and_read_back():
    request = JobRequest(prompts=["a cat"], seeds=[5], scheduler="dpm++_2m_karras")
    item = request.items()[0]
    assert "Sampler: DPM++ 2M, Schedule type: Karras," in parameters_text(request, item)
    meta = read_png_metadata(png_with_text(parameters=parameters_text(request, item)))
    assert meta.request.scheduler == "dpm++_2m_karras"
    old_style = "a cat\nSteps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 5, Size: 512x512"
    assert read_png_metadata(png_with_text(parameters=old_style)).request.scheduler == "dpm++_2m_karras"


def test_round_trip_keeps_every_field_and_pixels():
    request = full_request()
    item = request.items()[3]
    data = encode_png(small_image(), request, item, model_label="Base ✓", extra={"worker": "w1", "seconds": 1.5})
    meta = read_png_metadata(data)
    assert isinstance(meta, PngMetadata)
    assert meta.request == request
    assert meta.item == item
    assert meta.extra == {"worker": "w1", "seconds": 1.5}
    assert meta.parameters == parameters_text(request, item, model_label="Base ✓")
    assert meta.parameters.startswith("ein Fuchs im Schnee ❄ 狐\nNegative prompt: blurry, ugly ✗\n")
    assert Image.open(io.BytesIO(data)).getpixel((3, 3)) == (10, 20, 30)


def test_reads_from_a_path(tmp_path):
    request = full_request(scheduler="ddim")
    path = tmp_path / "image.png"
    path.write_bytes(encode_png(small_image(), request, request.items()[0]))
    assert read_png_metadata(path).request == request
    assert read_png_metadata(str(path)).item == request.items()[0]


def test_parameters_alone_rebuild_the_settings():
    request = full_request()
    item = request.items()[1]
    meta = read_png_metadata(png_with_text(parameters=parameters_text(request, item)))
    expected = request.model_copy(update={"prompts": [item.prompt], "seeds": [item.seed]})
    assert meta.request == expected
    assert meta.item == expected.items()[0]
    assert meta.extra == {}


def test_reads_a1111_png_from_another_tool():
    text = (
        "masterpiece, a castle\non a hill, <lora:style:0.8>\n"
        "Negative prompt: lowres, bad hands\nworst quality\n"
        "Steps: 28, Sampler: Euler a, Schedule type: Automatic, CFG scale: 5.5, Seed: 3141592653, "
        "Size: 768x512, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, "
        'Lora hashes: "style: 1a2b3c, other: 4d5e6f", Denoising strength: 0.7, Version: v1.9.4'
    )
    meta = read_png_metadata(png_with_text(parameters=text))
    assert meta.request == JobRequest(
        model="v1-5-pruned-emaonly",
        prompts=["masterpiece, a castle\non a hill"],
        seeds=[3141592653],
        negative_prompt="lowres, bad hands\nworst quality",
        width=768,
        height=512,
        steps=28,
        guidance=5.5,
        scheduler="euler_a",
        loras=[LoraRef(name="style", weight=0.8)],
    )
    assert meta.item.seed == 3141592653
    assert (meta.model_hash, meta.lora_hashes) == ("6ce0161689", {"style": "1a2b3c", "other": "4d5e6f"})
    assert meta.parameters == text


def test_unknown_sampler_and_display_model_name_fall_back_to_defaults():
    text = "a cat\nSteps: 10, Sampler: Restart, CFG scale: 3, Seed: 9, Size: 512x768, Model: Realistic Vision V5"
    request = read_png_metadata(png_with_text(parameters=text)).request
    assert (request.scheduler, request.model, request.height, request.guidance) == ("dpm++_2m", "tiny", 768, 3.0)


def test_png_without_metadata_gives_no_request():
    out = io.BytesIO()
    small_image().save(out, format="PNG")
    meta = read_png_metadata(out.getvalue())
    assert meta == PngMetadata(request=None, item=None, parameters="", extra={})


@pytest.mark.parametrize(
    ("chunks", "field", "words"),
    [
        ({"seedgrid": "{not json"}, "seedgrid", "not valid JSON"),
        ({"seedgrid": "[1, 2]"}, "seedgrid", "not a JSON object"),
        ({"seedgrid": json.dumps({"version": 99})}, "seedgrid", "version"),
        ({"seedgrid": json.dumps({"version": 1, "request": {"prompts": ["a"], "seeds": [2**40]}})}, "seeds", "range"),
        ({"seedgrid": json.dumps({"version": 1, "request": {"prompts": ["a"], "seeds": [1], "x": 1}})}, "x", "field"),
        (
            {"seedgrid": json.dumps({"version": 1, "request": {"prompts": ["a"], "seeds": [1]}, "item": {"index": 5}})},
            "item",
            "",
        ),
        ({"parameters": "a cat\nSteps: 20, Sampler: Euler, Seed: -5, Size: 512x512"}, "seeds", "range"),
        ({"parameters": "a cat\nSteps: many, Sampler: Euler, Seed: 1, Size: 512x512"}, "parameters", "Steps"),
        ({"parameters": "a cat\nSteps: 20, Sampler: Euler, Seed: 1, Size: big"}, "parameters", "Size"),
        ({"parameters": "a cat\nSteps: 20, CFG scale: nan, Seed: 1, Size: 512x512"}, "guidance", ""),
        ({"parameters": "a cat\nSteps: 20, Sampler: Euler, Size: 512x512"}, "parameters", "Seed"),
        ({"parameters": "Steps: 20, Sampler: Euler, Seed: 1, Size: 512x512"}, "prompts", "empty"),
    ],
)
def test_hostile_metadata_raises_value_error_naming_the_field(chunks, field, words):
    with pytest.raises(RequestError) as caught:
        read_png_metadata(png_with_text(**chunks))
    assert caught.value.field == field
    assert words in str(caught.value)


def test_item_that_is_not_in_the_request_is_refused():
    payload = {"version": 1, "request": {"prompts": ["a"], "seeds": [1]}}
    payload["item"] = {"index": 0, "row": 0, "col": 0, "prompt": "a", "seed": 2}
    with pytest.raises(RequestError, match="item"):
        read_png_metadata(png_with_text(seedgrid=json.dumps(payload)))


@pytest.mark.parametrize("data", [b"", b"not a png at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40])
def test_broken_files_raise_value_error(data):
    with pytest.raises(ValueError, match="png"):
        read_png_metadata(data)


def test_jpeg_is_not_a_png():
    out = io.BytesIO()
    small_image().save(out, format="JPEG")
    with pytest.raises(ValueError, match="not a PNG"):
        read_png_metadata(out.getvalue())


def test_encode_refuses_extra_keys_that_clash():
    request = JobRequest(prompts=["a"], seeds=[1])
    with pytest.raises(ValueError, match="extra"):
        encode_png(small_image(), request, request.items()[0], extra={"request": {}})
