"""LoRAs and file hashes in a PNG's metadata, as A1111 writes and reads them, and the short hashes themselves."""

import hashlib
import io
import json
import os
import subprocess
import sys

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from seedgrid.shared import model_hash
from seedgrid.shared.model_hash import lora_short_hash, model_short_hash, sha256_file
from seedgrid.shared.pngmeta import encode_png, hashes_from_parameters, parameters_text, read_png_metadata
from seedgrid.shared.request import JobRequest, LoraRef, RequestError

LORAS = [LoraRef(name="detail", weight=0.6), LoraRef(name="style_v2", weight=-1.0)]
HASHES = {"detail": "0123456789ab", "style_v2": "ba9876543210"}


def png_with_text(**chunks: str) -> bytes:
    info = PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def request_with_loras(**changes) -> JobRequest:
    fields = dict(prompts=["a castle on a hill", "a tower"], seeds=[42, 7], negative_prompt="blurry", loras=LORAS)
    return JobRequest(**{**fields, **changes})


def test_parameters_text_carries_the_tags_and_hashes_in_a1111_order():
    request = request_with_loras()
    text = parameters_text(request, request.items()[0], model_hash="6ce0161689", lora_hashes=HASHES)
    assert text == (
        "a castle on a hill <lora:detail:0.6> <lora:style_v2:-1>\n"
        "Negative prompt: blurry\n"
        "Steps: 20, Sampler: DPM++ 2M, CFG scale: 7.5, Seed: 42, Size: 512x512, Model hash: 6ce0161689, "
        'Model: tiny, Lora hashes: "detail: 0123456789ab, style_v2: ba9876543210"'
    )


def test_hashes_are_left_out_when_unknown():
    request = request_with_loras()
    text = parameters_text(request, request.items()[3], lora_hashes={"style_v2": "ba9876543210", "unused": "ff"})
    assert text.splitlines()[0] == "a tower <lora:detail:0.6> <lora:style_v2:-1>"
    assert "Model hash" not in text and text.endswith('Model: tiny, Lora hashes: "style_v2: ba9876543210"')
    plain = JobRequest(prompts=["a cat"], seeds=[1])
    assert parameters_text(plain, plain.items()[0]).endswith("Size: 512x512, Model: tiny")


def test_round_trip_keeps_the_loras_and_the_hashes():
    request = request_with_loras()
    item = request.items()[2]
    png = encode_png(
        Image.new("RGB", (8, 8)), request, item, extra={"worker": "w1"}, model_hash="6ce0161689", lora_hashes=HASHES
    )
    meta = read_png_metadata(png)
    assert meta.request == request and meta.item == item and meta.extra == {"worker": "w1"}
    assert (meta.model_hash, meta.lora_hashes) == ("6ce0161689", HASHES)
    assert meta.parameters == parameters_text(request, item, model_hash="6ce0161689", lora_hashes=HASHES)


def test_the_parameters_text_alone_restores_the_loras_and_hashes():
    request = request_with_loras()
    item = request.items()[1]
    text = parameters_text(request, item, model_hash="6ce0161689", lora_hashes=HASHES)
    meta = read_png_metadata(png_with_text(parameters=text))
    assert meta.request == request.model_copy(update={"prompts": [item.prompt], "seeds": [item.seed]})
    assert (meta.model_hash, meta.lora_hashes) == ("6ce0161689", HASHES)


def test_an_a1111_png_with_lora_tags_selects_the_loras():
    text = (
        "masterpiece, <lora:detail:0.6>, a castle, <lora:add_more-v1.5>\n"
        "Negative prompt: lowres <lora:neg:1>\n"
        "Steps: 28, Sampler: Euler a, Schedule type: Automatic, CFG scale: 5.5, Seed: 31, Size: 768x512, "
        'Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Lora hashes: "detail: 0123456789ab, '
        'add_more-v1.5: abcdef012345", TI hashes: "x: 00", Version: v1.9.4'
    )
    meta = read_png_metadata(png_with_text(parameters=text))
    assert meta.request.prompts == ["masterpiece, a castle"]
    assert meta.request.negative_prompt == "lowres <lora:neg:1>"
    assert meta.request.loras == [LoraRef(name="detail", weight=0.6), LoraRef(name="add_more-v1.5", weight=1.0)]
    assert meta.model_hash == "6ce0161689"
    assert meta.lora_hashes == {"detail": "0123456789ab", "add_more-v1.5": "abcdef012345"}


def test_foreign_hashes_that_are_not_hex_are_skipped():
    text = 'a cat\nSteps: 20, Seed: 1, Size: 512x512, Model hash: <none>, Lora hashes: "a: xyz, b: 12ab, : 34"'
    assert hashes_from_parameters(text) == ("", {"b": "12ab"})


@pytest.mark.parametrize(
    ("payload_changes", "field"),
    [
        ({"model_hash": 5}, "model_hash"),
        ({"model_hash": "not hex"}, "model_hash"),
        ({"lora_hashes": ["a"]}, "lora_hashes"),
        ({"lora_hashes": {"a": None}}, "lora_hashes"),
    ],
)
def test_hostile_hashes_in_the_seedgrid_chunk_are_refused_naming_them(payload_changes, field):
    payload = {"version": 1, "request": {"prompts": ["a"], "seeds": [1]}, **payload_changes}
    with pytest.raises(RequestError) as caught:
        read_png_metadata(png_with_text(seedgrid=json.dumps(payload)))
    assert caught.value.field == field and str(caught.value).startswith(f"{field}: ")


def test_older_pngs_have_no_hashes_and_extra_may_not_use_their_keys():
    payload = {"version": 1, "request": {"prompts": ["a"], "seeds": [1]}}
    meta = read_png_metadata(png_with_text(seedgrid=json.dumps(payload)))
    assert (meta.model_hash, meta.lora_hashes, meta.request.loras) == ("", {}, [])
    request = JobRequest(prompts=["a"], seeds=[1])
    with pytest.raises(ValueError, match="extra"):
        encode_png(Image.new("RGB", (8, 8)), request, request.items()[0], extra={"model_hash": "00"})


# -- the short hashes


def safetensors_bytes(header: dict, data: bytes) -> bytes:
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + data


def test_model_hash_is_the_files_sha256_cut_to_a1111s_length(tmp_path):
    path = tmp_path / "model.safetensors"
    content = safetensors_bytes({"__metadata__": {"a": "b"}}, os.urandom(3 * model_hash.CHUNK_BYTES + 17))
    path.write_bytes(content)
    full = hashlib.sha256(content).hexdigest()
    assert sha256_file(path) == full and sha256_file(str(path)) == full
    assert model_short_hash(path) == full[:10]


def test_a_safetensors_loras_hash_skips_its_header_as_a1111s_does(tmp_path):
    data = os.urandom(1000)
    first, second = tmp_path / "a.safetensors", tmp_path / "b.SafeTensors"
    first.write_bytes(safetensors_bytes({"__metadata__": {"ss_name": "one"}}, data))
    second.write_bytes(safetensors_bytes({"__metadata__": {"ss_name": "another, longer"}}, data))
    assert lora_short_hash(first) == lora_short_hash(second) == hashlib.sha256(data).hexdigest()[:12]
    assert sha256_file(first) != sha256_file(second)
    other = tmp_path / "c.pt"
    other.write_bytes(data)
    assert lora_short_hash(other) == hashlib.sha256(data).hexdigest()[:12]


def test_hashes_are_cached_until_the_file_changes(tmp_path, monkeypatch):
    path = tmp_path / "model.ckpt"
    path.write_bytes(b"first version")
    reads = []
    real = model_hash._sha256_from
    monkeypatch.setattr(model_hash, "_sha256_from", lambda *a: reads.append(a) or real(*a))
    assert sha256_file(path) == sha256_file(path) == hashlib.sha256(b"first version").hexdigest()
    assert len(reads) == 1
    path.write_bytes(b"second, longer version")
    assert sha256_file(path) == hashlib.sha256(b"second, longer version").hexdigest() and len(reads) == 2


def test_the_shared_lora_modules_import_no_torch():
    code = (
        "import sys, seedgrid.shared.model_hash, seedgrid.shared.lora_syntax, seedgrid.shared.pngmeta; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'diffusers', 'safetensors')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
