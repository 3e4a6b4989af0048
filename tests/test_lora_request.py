"""The request's `loras`: bounds, errors naming the field, the batch key, A1111's <lora:...> prompt tags
and the CLI's --lora."""

import argparse
import hashlib

import pytest

from seedgrid.client.cli.request_args import add_request_options, request_from_args
from seedgrid.shared import limits as L
from seedgrid.shared.lora_syntax import lift_lora_tags, lora_from_spec, split_lora_tags, with_lora_tags
from seedgrid.shared.request import JobRequest, LoraRef, RequestError, parse_request

BASE = {"prompts": ["a lighthouse"], "seeds": [0]}


def lora(name: str, weight: float = 1.0) -> dict:
    return {"name": name, "weight": weight}


def refusal(data) -> RequestError:
    with pytest.raises(RequestError) as caught:
        parse_request(data)
    return caught.value


def test_loras_default_to_none_and_round_trip_through_json():
    assert parse_request(BASE).loras == []
    request = parse_request({**BASE, "loras": [lora("detail", 0.6), lora("style_v2.1+x-y", -4), lora("a", 4)]})
    assert request.loras == [LoraRef(name="detail", weight=0.6), LoraRef(name="style_v2.1+x-y", weight=-4.0)] + [
        LoraRef(name="a", weight=4.0)
    ]
    assert all(type(entry.weight) is float for entry in request.loras)
    assert parse_request(request.model_dump(mode="json")) == request
    assert JobRequest.model_validate_json(request.model_dump_json()) == request


def test_a_weight_out_of_range_is_one_line_naming_loras_and_the_rule():
    message = str(refusal({**BASE, "loras": [lora("x", 9)]}))
    assert message == f"loras: weight 9 of 'x' is out of range (allowed: {L.FIELD_RULES['loras']})"
    assert "\n" not in message


@pytest.mark.parametrize(
    ("loras", "words"),
    [
        ([lora(f"l{i}") for i in range(L.MAX_LORAS + 1)], f"got {L.MAX_LORAS + 1} LoRAs"),
        ([lora("x", 0.5), lora("x", 0.5)], "'x' is listed twice"),
        ([lora("../secret")], "'../secret' is not a valid LoRA name"),
        ([lora("sub/dir")], "not a valid LoRA name"),
        ([lora("")], "not a valid LoRA name"),
        ([lora(".hidden")], "not a valid LoRA name"),
        ([lora("with space")], "not a valid LoRA name"),
        ([lora("x" * (L.MAX_LORA_NAME_CHARS + 1))], "not a valid LoRA name"),
        ([lora("x\n")], "not a valid LoRA name"),
        ([lora("x", -4.001)], "weight -4.001 of 'x' is out of range"),
        ([lora("x", float("nan"))], "weight nan of 'x'"),
        ([lora("x", float("inf"))], "weight inf of 'x'"),
        ([{"name": "x", "weight": "1"}], "LoRA 1 weight: Input should be a valid number"),
        ([{"name": "x", "weight": True}], "LoRA 1 weight"),
        ([lora("ok"), {"name": 3, "weight": 1}], "LoRA 2 name"),
        ([{"name": "x"}], "LoRA 1 has no weight"),
        ([{"name": "x", "weight": 1, "path": "/etc"}], "LoRA 1: 'path' is not a LoRA field"),
        (["x:1"], "LoRA 1 is not an object with a name and a weight"),
        ({"name": "x", "weight": 1}, "valid list"),
    ],
)
def test_bad_loras_are_refused_naming_loras(loras, words):
    error = refusal({**BASE, "loras": loras})
    assert error.field == "loras" and str(error).startswith("loras: "), str(error)
    assert words in str(error) and f"(allowed: {L.FIELD_RULES['loras']})" in str(error)


def test_the_batch_key_has_the_loras_in_any_order_and_is_unchanged_without():
    plain = parse_request(BASE)
    old = hashlib.sha256(b"tiny|512x512|20|dpm++_2m|7.5").hexdigest()[:20]
    assert plain.batch_key() == old == parse_request({**BASE, "loras": []}).batch_key()
    ab = parse_request({**BASE, "loras": [lora("a", 0.5), lora("b", 1)]})
    ba = parse_request({**BASE, "prompts": ["another"], "loras": [lora("b", 1.0), lora("a", 0.5)]})
    assert ab.batch_key() == ba.batch_key() != old
    assert parse_request({**BASE, "loras": [lora("a", 0.5), lora("b", 0.9)]}).batch_key() != ab.batch_key()
    assert parse_request({**BASE, "loras": [lora("a", 0.5)]}).batch_key() != ab.batch_key()
    assert parse_request({**BASE, "loras": [lora("a", 0)]}).batch_key() != old  # weight 0 still loads the file


@pytest.mark.parametrize(
    ("prompt", "text", "loras"),
    [
        ("a castle, <lora:detail:0.6>, on a hill", "a castle, on a hill", [("detail", 0.6)]),
        ("masterpiece <lora:style>", "masterpiece", [("style", 1.0)]),
        ("<lora:style:-1.5> a cat", "a cat", [("style", -1.5)]),
        ("a, <lora:x:1>, <lora:y:0.25>, b", "a, b", [("x", 1.0), ("y", 0.25)]),
        ("a castle\non a hill, <lora:x:0.8>", "a castle\non a hill", [("x", 0.8)]),
        ("a,<lora:x>,b", "a,b", [("x", 1.0)]),
        ("a <lora: x : 2 > b <lora:x:2>", "a b", [("x", 2.0)]),
        ("no tags, <hypernet:h:1>", "no tags, <hypernet:h:1>", []),
    ],
)
def test_split_lora_tags_removes_them_and_tidies_the_commas(prompt, text, loras):
    assert split_lora_tags(prompt) == (text, [LoraRef(name=n, weight=w) for n, w in loras])


@pytest.mark.parametrize("prompt", ["a <lora:x:0.5:0.8>", "a <lora:x:>", "a <lora:x:much>"])
def test_a_malformed_tag_is_refused_naming_loras(prompt):
    with pytest.raises(RequestError, match=r"^loras: <lora:x:[^>]*> is not <lora:NAME> or <lora:NAME:WEIGHT>"):
        split_lora_tags(prompt)


def test_lift_moves_every_prompts_tags_into_loras_after_the_explicit_ones():
    data = {
        **BASE,
        "prompts": ["a cat <lora:style:0.8>", "a dog, <lora:detail:0.6>", "a bird <lora:style:0.8>"],
        "negative_prompt": "blurry <lora:bad:1>",
        "loras": [lora("explicit", 2)],
    }
    request = parse_request(lift_lora_tags(data))
    assert request.prompts == ["a cat", "a dog", "a bird"]
    assert request.negative_prompt == "blurry <lora:bad:1>"  # as A1111: only the prompts' tags count
    assert [(e.name, e.weight) for e in request.loras] == [("explicit", 2.0), ("style", 0.8), ("detail", 0.6)]
    assert data["prompts"][0] == "a cat <lora:style:0.8>"  # the caller's data is left alone


def test_lift_merges_a_tag_that_repeats_an_explicit_lora_and_refuses_a_second_weight():
    same = lift_lora_tags({**BASE, "prompts": ["a <lora:x:0.5>"], "loras": [lora("x", 0.5)]})
    assert parse_request(same).loras == [LoraRef(name="x", weight=0.5)]
    with pytest.raises(RequestError, match="^loras: 'x' has two weights, 0.5 and 0.7 "):
        lift_lora_tags({**BASE, "prompts": ["a <lora:x:0.7>"], "loras": [lora("x", 0.5)]})
    with pytest.raises(RequestError, match="^loras: 'x' has two weights, 1 and 2 "):
        lift_lora_tags({**BASE, "prompts": ["a <lora:x>", "b <lora:x:2>"]})


def test_lift_refuses_a_prompt_that_was_only_tags_naming_prompts():
    with pytest.raises(RequestError) as caught:
        lift_lora_tags({**BASE, "prompts": ["fine", " <lora:x:1>, <lora:y> "]})
    assert caught.value.field == "prompts" and str(caught.value).startswith("prompts: prompt 2 is only <lora:...>")


@pytest.mark.parametrize("data", [None, [1], {"seeds": [0]}, {"prompts": "a <lora:x>"}, {**BASE, "loras": "x"}])
def test_lift_leaves_what_is_not_a_request_to_parse_request(data):
    assert lift_lora_tags(data) == data


def test_a_bad_name_in_a_tag_is_refused_by_parse_request_naming_loras():
    with pytest.raises(RequestError, match=r"^loras: '\.\./x' is not a valid LoRA name"):
        parse_request(lift_lora_tags({**BASE, "prompts": ["a <lora:../x:1>"]}))


def test_with_lora_tags_writes_what_split_reads_back():
    loras = [LoraRef(name="detail", weight=0.6), LoraRef(name="style", weight=1.0), LoraRef(name="neg", weight=-0.25)]
    text = with_lora_tags("a castle, on a hill", loras)
    assert text == "a castle, on a hill <lora:detail:0.6> <lora:style:1> <lora:neg:-0.25>"
    assert split_lora_tags(text) == ("a castle, on a hill", loras)
    assert with_lora_tags("a cat", []) == "a cat"


def test_lora_from_spec_takes_name_alone_or_with_a_weight():
    assert lora_from_spec("detail") == LoraRef(name="detail", weight=1.0)
    assert lora_from_spec("detail:-0.5") == LoraRef(name="detail", weight=-0.5)
    with pytest.raises(RequestError, match="^loras: 'detail:lots' is not NAME or NAME:WEIGHT"):
        lora_from_spec("detail:lots")


# -- the CLI's --lora


def cli_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_request_options(parser)
    return parser.parse_args(list(argv))


def test_cli_lora_option_and_prompt_tags_become_the_requests_loras():
    args = cli_args("a cat, <lora:style:0.8>", "--prompt", "a dog", "--lora", "detail:0.6", "--lora", "plain")
    request = request_from_args(args)
    assert request.prompts == ["a cat", "a dog"]
    assert request.loras == [
        LoraRef(name="detail", weight=0.6),
        LoraRef(name="plain", weight=1.0),
        LoraRef(name="style", weight=0.8),
    ]
    assert request_from_args(cli_args("a cat")).loras == []


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--lora", "x:9"], "weight 9 of 'x' is out of range"),
        (["--lora", "x:lots"], "'x:lots' is not NAME or NAME:WEIGHT"),
        (["--lora", "../x"], "not a valid LoRA name"),
        (["--lora", "x:1", "--lora", "x:2"], "'x' has two weights"),
        ([*(arg for i in range(L.MAX_LORAS + 1) for arg in ("--lora", f"l{i}"))], "LoRAs"),
    ],
)
def test_cli_lora_errors_name_the_option(argv, words):
    with pytest.raises(RequestError) as caught:
        request_from_args(cli_args("a cat", *argv))
    assert str(caught.value).startswith("--lora: ") and words in str(caught.value), str(caught.value)
    assert caught.value.field == "loras"


def test_cli_help_states_the_lora_bounds():
    parser = argparse.ArgumentParser()
    add_request_options(parser)
    help_text = " ".join(parser.format_help().split())
    assert "--lora NAME[:WEIGHT]" in help_text and f"at most {L.MAX_LORAS} LoRAs" in help_text
