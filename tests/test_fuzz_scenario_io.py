"""Fuzzing llmcap.io.scenario_io's decoders (cmp=, dev=, the scenario file) and llmcap.io.safejson: 10,000 cases each.

Each decoder documents one failure type (ValueError with a message); nothing else may escape, and whatever
decodes must be a valid, finite value.
"""

from __future__ import annotations

import base64
import json
import math
import zlib

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from llmcap.catalog.loader import load_catalog
from llmcap.io.safejson import MAX_DEPTH, JsonError, load_json
from llmcap.io.scenario_io import (
    CMP_FIELDS,
    MAX_DEVICES_JSON_BYTES,
    MAX_FILE_BYTES,
    MAX_SCENARIOS,
    ScenarioFile,
    decode_devices,
    decode_scenarios,
    dump_scenario_file,
    encode_devices,
    encode_scenarios,
    load_scenario_file,
)
from llmcap.model.hf_limits import MAX_LAYERS
from llmcap.model.hfconfig import parse_config
from llmcap.scenario import Scenario

FUZZ = settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck))
CATALOG = load_catalog()
LLAMA8 = "meta-llama/Llama-3.1-8B-Instruct"
L4 = CATALOG.device("l4")
ARCH = parse_config(json.loads(CATALOG.model(LLAMA8).config_path.read_text()))
VALID_FILE = dump_scenario_file(
    [Scenario(model=LLAMA8, hardware="h100-sxm", tp=2, concurrency=8)],
    {"my-l4": L4.model_copy(update={"id": "my-l4"})},
    {"my/llama": ARCH},
)

# -- hostile pieces ------------------------------------------------------------------------------------------------
numbers = st.one_of(
    st.integers(-(10**40), 10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["0", "-1", "1e999", "NaN", "inf", "-inf", "9" * 50, "1.5", "+3", "0x10", "1_000", "max"]),
)
texts = st.one_of(
    st.text(max_size=30),
    st.text(alphabet="0123456789+-.,;eE maxMAX_/", max_size=30),
    st.sampled_from(["", " ", "\x00", "é", "🦙", "h100-sxm", LLAMA8, "fp8", "vllm", "x" * 300, "=cmd|' /C calc'!A0"]),
)
field_values = st.one_of(texts, numbers.map(str))


json_keys = st.one_of(texts, st.sampled_from(CMP_FIELDS))
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, texts),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(json_keys, inner, max_size=4)),
    max_leaves=8,
)


def _scenario_dicts():
    keys = st.sampled_from([*CMP_FIELDS, "bogus", ""])
    return st.dictionaries(keys, st.one_of(json_values, numbers, texts), max_size=8).map(
        lambda d: {"model": LLAMA8, "hardware": "h100-sxm", **d}
    )


def _device_dicts():
    base = L4.model_dump(mode="json")
    keys = st.sampled_from([*base, "bogus"])
    return st.dictionaries(keys, st.one_of(numbers, texts, json_values), max_size=4).map(lambda d: {**base, **d})


def _arch_dicts():
    base = ARCH.model_dump(mode="json")
    keys = st.sampled_from([*base, "bogus"])
    return st.dictionaries(keys, st.one_of(numbers, st.integers(0, 10**20), json_values), max_size=3).map(
        lambda d: {**base, **d}
    )


file_docs = st.fixed_dictionaries(
    {"llmcap_scenarios": st.one_of(st.just(1), numbers, texts)},
    optional={
        "scenarios": st.one_of(st.lists(_scenario_dicts(), max_size=MAX_SCENARIOS + 2), json_values),
        "custom_devices": st.one_of(st.lists(_device_dicts(), max_size=2), json_values),
        "custom_models": st.one_of(st.dictionaries(texts, _arch_dicts(), max_size=2), json_values),
        "extra": json_values,
    },
)


def _dumps(doc) -> str:
    """JSON text, including the non-standard NaN/Infinity a hostile file may hold."""
    return json.dumps(doc, allow_nan=True, default=str)


def _mutated(data: st.DataObject, text: str) -> bytes:
    raw = bytearray(text.encode())
    how = data.draw(st.sampled_from(["truncate", "flip", "insert", "same"]))
    if raw and how == "truncate":
        return bytes(raw[: data.draw(st.integers(0, len(raw) - 1))])
    if raw and how == "flip":
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    elif how == "insert":
        i = data.draw(st.integers(0, len(raw)))
        raw[i:i] = data.draw(st.binary(max_size=8))
    return bytes(raw)


def _check_message(exc: ValueError) -> None:
    text = str(exc)
    assert text.strip(), "an error without a message"
    assert "Traceback" not in text and len(text) < 20_000


def _assert_finite_file(doc: ScenarioFile) -> None:
    for d in doc.custom_devices:
        for v in d.model_dump().values():
            if isinstance(v, float):
                assert math.isfinite(v), d
        assert all(math.isfinite(x) for x in d.peak_tflops.values())
    for arch in doc.custom_models.values():
        assert arch.num_layers <= MAX_LAYERS


# -- the scenario file ---------------------------------------------------------------------------------------------
@FUZZ
@given(file_docs)
@example({"llmcap_scenarios": 1, "custom_devices": [{**L4.model_dump(mode="json"), "memory_gb": math.inf}]})
@example({"llmcap_scenarios": 1, "custom_models": {"big": {**ARCH.model_dump(mode="json"), "params_other": 10**20}}})
def test_scenario_file_of_any_shape_loads_or_says_why(doc):
    try:
        out = load_scenario_file(_dumps(doc))
    except ValueError as exc:
        _check_message(exc)
        return
    assert isinstance(out, ScenarioFile) and len(out.scenarios) <= MAX_SCENARIOS
    _assert_finite_file(out)


@FUZZ
@given(st.data())
def test_damaged_scenario_file_loads_or_says_why(data):
    raw = _mutated(data, VALID_FILE)
    try:
        out = load_scenario_file(raw)
    except ValueError as exc:
        _check_message(exc)
        return
    _assert_finite_file(out)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{", "not JSON"),
        (b"", "not JSON: Expecting value"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[" * 200_000, f"nested more than {MAX_DEPTH} levels"),
        (b'{"llmcap_scenarios": 1, "x": ' + b"9" * 5000 + b"}", "digits) is out of range"),
        (b'{"llmcap_scenarios": NaN}', "NaN is not a number"),
        (b'{"llmcap_scenarios": 1e999}', "1e999 is out of range"),
        (b"[]", "not an llmcap scenario file"),
        (b'{"llmcap_scenarios": 2}', "llmcap_scenarios"),
        (b" " * (MAX_FILE_BYTES + 1), "larger than 5 MB"),
    ],
)
def test_bad_scenario_files_name_the_problem(data, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_scenario_file(data)


def test_infinite_device_figures_and_absurd_models_are_refused_in_a_scenario_file():
    doc = json.loads(VALID_FILE)
    doc["custom_devices"][0]["mem_bw_gbps"] = 1e999  # json.dumps writes Infinity
    with pytest.raises(ValueError, match="Infinity is not a number"):
        load_scenario_file(json.dumps(doc))
    doc = json.loads(VALID_FILE)
    arch = doc["custom_models"]["my/llama"]
    arch.update(num_layers=10**9, n_full_attn_layers=10**9)
    with pytest.raises(ValueError, match=r"custom model 'my/llama': field 'num_layers' = 1e\+09 is outside"):
        load_scenario_file(json.dumps(doc))
    doc = json.loads(VALID_FILE)
    doc["custom_models"]["my/llama"]["params_other"] = 10**25
    with pytest.raises(ValueError, match="params_other"):
        load_scenario_file(json.dumps(doc))
    assert load_scenario_file(VALID_FILE).custom_models["my/llama"] == ARCH  # the valid file still loads


# -- cmp= -------------------------------------------------------------------------------------------------------------
cmp_texts = st.one_of(
    st.text(max_size=120),
    st.lists(st.lists(field_values, max_size=len(CMP_FIELDS) + 2).map(",".join), max_size=MAX_SCENARIOS + 3).map(
        ";".join
    ),
    st.just("x" * 20_000),
)


@FUZZ
@given(cmp_texts)
@example("m,h,++5")
@example(f"{LLAMA8},h100-sxm,,,,,,,,,,{'9' * 5000}")
def test_cmp_value_never_raises_and_says_why_per_scenario(text):
    scns, problems = decode_scenarios(text)
    assert len(scns) <= MAX_SCENARIOS
    assert all(isinstance(s, Scenario) for s in scns)
    parts = [p for p in text.split(";") if p.strip()]
    if len(text) <= 10_000:
        assert len(scns) + sum(p.startswith("scenario ") for p in problems) == min(len(parts), MAX_SCENARIOS)
    for p in problems:
        assert p.strip() and len(p) < 5_000


def test_cmp_round_trip_and_bad_fields_are_named():
    scns = [
        Scenario(model=LLAMA8, hardware="h100-sxm", tp=2, weight_format="fp8", concurrency="max"),
        Scenario(model=LLAMA8, hardware="a100-sxm-80gb", input_len=8000, output_len=10, concurrency=3),
    ]
    assert decode_scenarios(encode_scenarios(scns)) == (scns, [])
    _, problems = decode_scenarios(f"{LLAMA8},h100-sxm,0;{LLAMA8},h100-sxm,,,,,,,,,,lots;a,b,{'9' * 5000}")
    assert problems[0].startswith("scenario 1: tp:")
    assert problems[1] == "scenario 2: concurrency: 'lots' is not an integer"
    assert problems[2].startswith("scenario 3: tp:") and len(problems[2]) < 300


# -- dev= -----------------------------------------------------------------------------------------------------------
def _packed(payload: bytes) -> str:
    return base64.urlsafe_b64encode(zlib.compress(payload, 9)).decode().rstrip("=")


dev_texts = st.one_of(
    st.text(max_size=300),
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=", max_size=300),
    st.lists(_device_dicts(), max_size=3).map(lambda ds: _packed(_dumps(ds).encode())),
    json_values.map(lambda v: _packed(_dumps(v).encode())),
    st.binary(max_size=200).map(_packed),
)


@FUZZ
@given(dev_texts)
def test_dev_value_decodes_or_says_why(text):
    try:
        devices = decode_devices(text)
    except ValueError as exc:
        _check_message(exc)
        return
    for d in devices:
        assert math.isfinite(d.memory_gb) and math.isfinite(d.mem_bw_gbps)


def test_dev_round_trip_and_hostile_values():
    mine = [L4.model_copy(update={"id": "my-l4"})]
    assert decode_devices(encode_devices(mine)) == mine
    bomb = _packed(b"[" + b" " * (MAX_DEVICES_JSON_BYTES * 4) + b"]")  # 4 MB of blanks in a ~4 kB value
    assert len(bomb) < 20_000
    with pytest.raises(ValueError, match="expands beyond"):
        decode_devices(bomb)
    with pytest.raises(ValueError, match="longer than"):
        decode_devices("A" * 50_000)
    with pytest.raises(ValueError, match="nested more than"):
        decode_devices(_packed(b"[" * 100_000))
    with pytest.raises(ValueError, match="Infinity"):
        decode_devices(_packed(_dumps([{**L4.model_dump(mode="json"), "memory_gb": math.inf}]).encode()))


# -- io.safejson -----------------------------------------------------------------------------------------------------
@FUZZ
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300), json_values.map(_dumps)))
def test_load_json_returns_finite_json_or_a_json_error(data):
    try:
        doc = load_json(data, max_bytes=10_000)
    except JsonError as exc:
        assert str(exc).startswith("the file ")
        return
    stack = [doc]
    while stack:
        v = stack.pop()
        if isinstance(v, float):
            assert math.isfinite(v)
        elif isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
