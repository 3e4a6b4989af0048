"""Fuzzing (hypothesis): any request data is parsed within every limit or refused naming its field,
and raw task messages sent around the client never stop the worker or leave a refusal unnamed."""

import json
import math
import re
import uuid

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from kombu.utils import json as kombu_json

from seedgrid.shared import limits as L
from seedgrid.shared.job import JobState
from seedgrid.shared.jobstore import JobStore
from seedgrid.shared.names import TASK_GENERATE, queue_for_model
from seedgrid.shared.request import JobRequest, RequestError, parse_request
from seedgrid.shared.seeds import parse_seeds
from tests.helpers import wait_until

FIELDS = tuple(JobRequest.model_fields)
REQUIRED = ("prompts", "seeds")
DEFAULTS = {name: info.default for name, info in JobRequest.model_fields.items() if name not in REQUIRED}
SMALL = dict(prompts=["a lighthouse"], seeds=[0], steps=2, width=64, height=64)

# -- arbitrary JSON-like values

chars = st.characters(exclude_categories=())  # every code point, lone surrogates and controls included
texts = st.one_of(
    st.text(chars, max_size=20),
    st.text(st.characters(max_codepoint=0x20), max_size=8),  # controls and whitespace only
    st.builds(lambda c, n: c * n, chars, st.integers(L.MAX_PROMPT_CHARS - 3, L.MAX_PROMPT_CHARS + 3)),
    st.builds(lambda c, n: c * n, chars, st.integers(0, 30_000)),
)
ints = st.one_of(
    st.integers(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, -1, 1, 7, 8, 56, 64, 2048, 2056, 150, 151, L.MAX_SEED, L.MAX_SEED + 1, 2**63, -(2**63)]),
)
# Built, not listed: repr() of an int past 4300 digits raises, and hypothesis reprs its strategies.
huge_ints = st.builds(lambda sign, digits: sign * 10**digits, st.sampled_from([1, -1]), st.sampled_from([400, 5000]))
floats = st.floats()  # nan, inf, -0.0, subnormals included
scalars = st.one_of(st.none(), st.booleans(), ints, huge_ints, floats, texts)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)

# -- valid values of each field, biased to the bounds

prompt_texts = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=30).filter(str.strip)
VALID = {
    "model": st.one_of(st.just("tiny"), st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,60}", fullmatch=True)),
    "prompts": st.one_of(
        st.lists(prompt_texts, min_size=1, max_size=4),
        st.builds(lambda p, n: [p] * n, prompt_texts, st.sampled_from([L.MAX_PROMPTS - 1, L.MAX_PROMPTS])),
        st.just(["x" * L.MAX_PROMPT_CHARS]),
    ),
    "seeds": st.one_of(
        st.lists(st.integers(L.MIN_SEED, L.MAX_SEED), min_size=1, max_size=6),
        st.builds(lambda n: list(range(n)), st.sampled_from([1, 16, 17, L.MAX_SEEDS])),
        st.just([L.MIN_SEED, L.MAX_SEED]),
    ),
    "negative_prompt": st.one_of(
        st.text(st.characters(exclude_categories=("Cs",)), max_size=30), st.just("n" * L.MAX_PROMPT_CHARS)
    ),
    "width": st.integers(L.MIN_SIZE // 8, L.MAX_SIZE // 8).map(lambda k: k * 8),
    "height": st.sampled_from([L.MIN_SIZE, 72, 512, L.MAX_SIZE]),
    "steps": st.integers(L.MIN_STEPS, L.MAX_STEPS),
    "guidance": st.one_of(st.floats(L.MIN_GUIDANCE, L.MAX_GUIDANCE), st.integers(0, 30)),
    "scheduler": st.sampled_from(L.SCHEDULER_NAMES),
    "loras": st.lists(
        st.fixed_dictionaries(
            {
                "name": st.from_regex(L.LORA_NAME_PATTERN, fullmatch=True),
                "weight": st.one_of(
                    st.floats(L.MIN_LORA_WEIGHT, L.MAX_LORA_WEIGHT),
                    st.integers(int(L.MIN_LORA_WEIGHT), int(L.MAX_LORA_WEIGHT)),
                ),
            }
        ),
        max_size=L.MAX_LORAS,
        unique_by=lambda lora: lora["name"],
    ),
}
assert set(VALID) == set(FIELDS)
extra_keys = st.text(chars, min_size=0, max_size=12).filter(lambda k: k not in FIELDS)


def field_values(name: str) -> st.SearchStrategy:
    """Valid values mixed with junk of every JSON type, and lists of junk where a list is expected."""
    return st.one_of(VALID[name], json_values, st.lists(scalars, max_size=5))


@st.composite
def request_data(draw, values=field_values):
    """A valid request with a few fields replaced, removed or added; sometimes not an object at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    data = {name: draw(VALID[name]) for name in FIELDS if name in REQUIRED or draw(st.booleans())}
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=3, unique=True)):
        if draw(st.integers(0, 4)) == 0:
            data.pop(name, None)
        else:
            data[name] = draw(values(name))
    for key in draw(st.lists(extra_keys, max_size=2)):
        data[key] = draw(json_values)
    return data


def extra_keys_of(data) -> set[str]:
    return {str(key) for key in data if key not in FIELDS} if isinstance(data, dict) else set()


def assert_refusal_names_field(exc: RequestError, data) -> None:
    if not isinstance(data, dict):
        assert exc.field == "request", exc
    else:
        assert exc.field in (*FIELDS, "items", "request") or exc.field in extra_keys_of(data), exc
        if exc.field == "items":
            assert len(data["prompts"]) * len(data["seeds"]) > L.MAX_ITEMS, exc
        if exc.field in REQUIRED and exc.field not in data:
            assert "is required" in str(exc), exc
    assert str(exc).startswith(f"{exc.field}: "), (exc.field, str(exc))
    str(exc).encode("utf-8")  # a refusal can be stored and shown anywhere


def assert_within_limits(req: JobRequest, data: dict) -> None:
    assert type(req.model) is str and 0 < len(req.model) <= L.MAX_MODEL_NAME_CHARS
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/-]*", req.model) and ".." not in req.model
    assert type(req.prompts) is list and 1 <= len(req.prompts) <= L.MAX_PROMPTS
    for p in req.prompts:
        assert type(p) is str and p.strip() and len(p) <= L.MAX_PROMPT_CHARS
        p.encode("utf-8")
    assert type(req.seeds) is list and 1 <= len(req.seeds) <= L.MAX_SEEDS
    assert all(type(s) is int and L.MIN_SEED <= s <= L.MAX_SEED for s in req.seeds)
    assert type(req.negative_prompt) is str and len(req.negative_prompt) <= L.MAX_PROMPT_CHARS
    req.negative_prompt.encode("utf-8")
    for size in (req.width, req.height):
        assert type(size) is int and L.MIN_SIZE <= size <= L.MAX_SIZE and size % L.SIZE_MULTIPLE == 0
    assert type(req.steps) is int and L.MIN_STEPS <= req.steps <= L.MAX_STEPS
    assert isinstance(req.guidance, float) and math.isfinite(req.guidance)
    assert L.MIN_GUIDANCE <= req.guidance <= L.MAX_GUIDANCE
    assert req.scheduler in L.SCHEDULER_NAMES
    items = req.items()
    assert len(items) == len(req.prompts) * len(req.seeds) <= L.MAX_ITEMS
    for n, item in enumerate(items):
        assert (item.index, item.prompt, item.seed) == (n, req.prompts[item.row], req.seeds[item.col])
    assert len(req.loras) <= L.MAX_LORAS and len({lora.name for lora in req.loras}) == len(req.loras)
    for lora in req.loras:
        assert re.fullmatch(L.LORA_NAME_PATTERN, lora.name) and isinstance(lora.weight, float)
        assert math.isfinite(lora.weight) and L.MIN_LORA_WEIGHT <= lora.weight <= L.MAX_LORA_WEIGHT
    # Nothing was coerced or dropped: every field is what was sent, or its default.
    dumped = req.model_dump()
    for name in FIELDS:
        assert dumped[name] == data.get(name, DEFAULTS.get(name)), name


@settings(max_examples=400, deadline=None)
@given(data=request_data())
@example(data={**SMALL, "prompts": ["\ud800"]})
@example(data={**SMALL, "negative_prompt": "ok \udfff"})
@example(data={**SMALL, "model": "tiny\n"})
@example(data={**SMALL, "seeds": [10**5000]})
@example(data={**SMALL, "\ud800": 1})
@example(data={**SMALL, 1: 2})
@example(data=["not", "an", "object"])
def test_any_request_data_is_parsed_within_limits_or_refused_naming_its_field(data):
    try:
        req = parse_request(data)
    except RequestError as exc:
        assert_refusal_names_field(exc, data)
        return
    assert_within_limits(req, data)
    # What a client queues is what a worker parses, unchanged, through either JSON dump.
    assert parse_request(json.loads(json.dumps(req.model_dump(mode="json")))) == req
    assert parse_request(json.loads(req.model_dump_json())) == req
    assert parse_request(req) == req


@st.composite
def seed_specs(draw):
    """(text, the seeds it must give, or None where it must be refused)."""
    if draw(st.integers(0, 5)) == 0:
        return draw(texts), "any"
    if draw(st.integers(0, 5)) == 0:
        n = draw(st.one_of(st.integers(-3, L.MAX_SEEDS + 3), st.integers()))
        return f"{draw(st.sampled_from(['random:', 'RANDOM: ', ' random:']))}{n}", n if 1 <= n <= L.MAX_SEEDS else None
    parts, expected = [], []
    for _ in range(draw(st.integers(1, 4))):
        lo = draw(st.one_of(st.integers(-3, 300), st.integers(L.MAX_SEED - 300, L.MAX_SEED + 3), st.integers()))
        if draw(st.booleans()):
            parts.append(str(lo))
            expected = expected + [lo] if expected is not None and L.MIN_SEED <= lo <= L.MAX_SEED else None
        else:
            hi = lo + draw(st.integers(-3, L.MAX_SEEDS + 2))
            parts.append(f"{lo}{draw(st.sampled_from(['-', ' - ']))}{hi}")
            ok = L.MIN_SEED <= lo <= hi <= L.MAX_SEED and hi - lo < L.MAX_SEEDS
            expected = expected + list(range(lo, hi + 1)) if ok and expected is not None else None
    if expected is not None and len(expected) > L.MAX_SEEDS:
        expected = None
    return draw(st.sampled_from([",", ", ", " ,"])).join(parts), expected


@settings(max_examples=400, deadline=None)
@given(spec=seed_specs())
@example(spec=("9" * 5000, None))
@example(spec=("random:" + "9" * 5000, None))
@example(spec=("0-" + "9" * 5000, None))
@example(spec=("--5", None))
@example(spec=("-1-5", None))
def test_any_seed_text_gives_seeds_in_range_or_is_refused_naming_seeds(spec):
    text, expected = spec
    try:
        seeds = parse_seeds(text)
    except RequestError as exc:
        assert expected in (None, "any"), (text, expected, str(exc))
        assert exc.field == "seeds" and str(exc).startswith("seeds: "), str(exc)
        return
    assert expected is not None, (text, seeds)
    assert 1 <= len(seeds) <= L.MAX_SEEDS
    assert all(type(s) is int and L.MIN_SEED <= s <= L.MAX_SEED for s in seeds)
    if isinstance(expected, int):
        assert len(seeds) == expected
    elif expected != "any":
        assert seeds == expected
    assert parse_request({**SMALL, "seeds": seeds}).seeds == seeds


# -- raw task messages to the real worker

SMALL_VALID = {
    "prompts": st.lists(prompt_texts, min_size=1, max_size=2),
    "seeds": st.lists(st.integers(L.MIN_SEED, L.MAX_SEED), min_size=1, max_size=2),
    "width": st.sampled_from([64, 72]),
    "height": st.sampled_from([64, 72]),
    "steps": st.integers(1, 3),
    "guidance": st.floats(L.MIN_GUIDANCE, L.MAX_GUIDANCE),
    "model": st.sampled_from(["tiny", "tiny", "someone/else"]),
    "scheduler": st.sampled_from(L.SCHEDULER_NAMES),
    "negative_prompt": st.text(max_size=20),
    "loras": st.just([]),  # the tiny worker has no LoRA files
}
raw_scalars = st.one_of(st.none(), st.booleans(), ints, floats, texts)  # JSON can carry them all
raw_values = st.recursive(
    raw_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(chars, max_size=8), inner, max_size=3),
    max_leaves=8,
)
turns = st.one_of(ints, floats, st.text(max_size=8), st.none(), st.booleans(), st.lists(ints, max_size=2))


def raw_field_values(name: str) -> st.SearchStrategy:
    return st.one_of(SMALL_VALID[name], raw_values, st.lists(raw_scalars, max_size=3))


@st.composite
def raw_payloads(draw):
    if draw(st.integers(0, 7)) == 0:
        return draw(raw_values)
    data = dict(SMALL)
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=3, unique=True)):
        if draw(st.integers(0, 4)) == 0:
            data.pop(name, None)
        else:
            data[name] = draw(raw_field_values(name))
    for key in draw(st.lists(extra_keys, max_size=1)):
        data[key] = draw(raw_values)
    return data


def work(payload) -> int:
    """Tiny-model image-steps a payload asks for, or 0 where it is refused."""
    try:
        req = parse_request(payload)
    except RequestError:
        return 0
    return len(req.items()) * req.steps * (req.width * req.height) // (64 * 64)


@st.composite
def raw_messages(draw):
    """(args, kwargs, job id whose record must name the outcome or None, payload as the worker sees it)."""
    payload = draw(raw_payloads())
    seen = kombu_json.loads(kombu_json.dumps(payload))  # int keys become strings, tuples lists
    assume(work(seen) <= 16)  # every valid one is small, so the worker gets through them all quickly
    shape = draw(st.sampled_from(["args", "args", "turn", "turn", "kwargs", "odd"]))
    job_id = uuid.uuid4().hex + draw(st.text(st.characters(exclude_categories=("Cs",)), max_size=12))
    turn = draw(turns)
    if shape == "args":
        return [job_id, payload], {}, job_id, seen
    if shape == "turn":
        return [job_id, payload], {"turn": turn}, job_id, seen
    if shape == "kwargs":
        return [], {"job_id": job_id, "request": payload, "turn": turn}, job_id, seen
    # Not a string id, the wrong arity or an unknown keyword: only the worker's survival is checked.
    odd_id = draw(
        st.one_of(
            ints,
            floats,
            st.none(),
            st.booleans(),
            st.dictionaries(st.text(max_size=4), ints),
            st.just(uuid.uuid4().hex + "\ud800"),
        )
    )  # a key Redis cannot encode
    args, kwargs = draw(
        st.sampled_from(
            [
                ([odd_id, payload], {}),
                ([odd_id, payload, turn], {}),
                ([], {}),
                ([job_id], {}),
                ([job_id, payload, turn, turn], {}),
                ([job_id, payload], {"bogus": turn}),
                ([job_id, payload], {"job_id": job_id}),
                ([job_id, payload], {"turn": turn, "priority": 1}),
            ]
        )
    )
    return args, kwargs, None, seen


def message_for(payload, kwargs=None) -> tuple:
    job_id = uuid.uuid4().hex
    return [job_id, payload], kwargs or {}, job_id, kombu_json.loads(kombu_json.dumps(payload))


def test_raw_task_messages_never_stop_the_worker_and_refusals_name_their_field(client, tiny_worker):
    queue = queue_for_model("tiny")
    sent = []
    store = JobStore(client.redis)
    recorded = set()  # jobs sent as the contract says, their record written first; the others have none

    @settings(
        max_examples=35,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much, HealthCheck.too_slow],
    )
    @given(message=raw_messages())
    @example(message=message_for({**SMALL, "prompts": ["\ud800"]}))  # lone surrogates: no PNG can hold them
    @example(message=message_for({**SMALL, "negative_prompt": "ok \udfff"}))
    @example(message=message_for({**SMALL, "model": "tiny\n"}))
    @example(message=message_for({**SMALL, "model": "someone/else"}))
    @example(message=message_for({**SMALL, "seeds": [2**64]}, {"turn": "1"}))
    @example(message=message_for(SMALL, {"turn": -1}))
    @example(message=message_for(SMALL, {"turn": 2**70}))
    @example(message=([uuid.uuid4().hex + "\ud800", SMALL], {}, None, SMALL))
    def send(message):
        args, kwargs, job_id, seen = message
        if job_id is not None and len(sent) % 2 == 0 and work(seen):
            store.create(job_id, parse_request(seen), client.client_id)
            recorded.add(job_id)
        client.celery.send_task(TASK_GENERATE, args=args, kwargs=kwargs, queue=queue)
        sent.append(message)

    send()
    checked = 0
    for _args, _kwargs, job_id, seen in sent:
        if job_id is None:
            continue
        status = wait_until(
            lambda: (s := store.status(job_id)) and s.state.finished and s,
            timeout=90,
            message=f"the outcome of {job_id!r} with {str(seen)[:300]}",
        )
        what = f"{str(seen)[:300]} -> {status.state.value}: {status.error}"
        try:
            req = parse_request(seen)
        except RequestError as exc:
            assert_refusal_names_field(exc, seen)
            assert status.state == JobState.FAILED and status.error == str(exc), what
        else:
            if req.model != "tiny":
                assert status.state == JobState.FAILED and status.error.startswith("model: "), what
            elif job_id in recorded:
                assert status.state == JobState.SUCCEEDED, what
                assert len(store.images(job_id)) == len(req.items()), what
            else:
                assert status.state == JobState.FAILED and status.error.startswith("job: "), what
        checked += 1
    assert checked >= 10, f"only {checked} of {len(sent)} messages had a string job id"
    assert tiny_worker.alive(), open(tiny_worker.log_path).read()[-3000:]
    good = client.submit(SMALL)
    assert client.wait(good, timeout=60).state == JobState.SUCCEEDED
    assert tiny_worker.alive()
