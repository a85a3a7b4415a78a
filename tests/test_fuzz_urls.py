"""Fuzzing app.state.urlstate.parse_query with 10,000 hostile queries: it never raises, every bad value is named in a
warning, and whatever it returns is a valid PageInputs that builds a valid Scenario and survives a round trip.

The oracle is independent of the parser: each query mixes values built to be valid (catalog ids, in-range
numbers) with values built to be invalid (out of range, NaN, inf, negative, zero, unicode, over-long, junk),
and the test knows which keys got which.
"""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from url_oracle import (
    CHOICE_SETS,
    CHOICES,
    CROSS_FIELD,
    FLAG_KEYS,
    FLOAT_RANGES,
    HOSTILE,
    INT_RANGES,
    KNOWN_KEYS,
    is_good,
)

from llmcap.app.state.urlstate import (
    KEYS,
    MAX_VALUE_CHARS,
    PASSTHROUGH_KEYS,
    PERCENTILES,
    PageInputs,
    parse_query,
    to_query,
)
from llmcap.scenario import MAX_DEVICES, Scenario

FUZZ = settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck))
junk = st.one_of(st.sampled_from(HOSTILE), st.text(min_size=1, max_size=24))
too_long = st.text(min_size=1, max_size=5).map(lambda t: (t * (MAX_VALUE_CHARS + 1))[: MAX_VALUE_CHARS + 50])


def _good_value(key: str) -> st.SearchStrategy[str]:
    if key in INT_RANGES:
        lo, hi = INT_RANGES[key]
        ints = st.integers(lo, min(hi, 64)) if key in ("tp", "pp", "ep") else st.integers(lo, hi)
        out = ints.map(str)
        return st.one_of(out, st.just("max")) if key == "conc" else out
    if key == "n":
        return st.integers(1, 64).map(str)
    if key in FLOAT_RANGES:
        lo, hi = FLOAT_RANGES[key]
        return st.floats(max(lo, 0.1), hi, allow_nan=False).map(repr)
    if key == "pct":
        return st.sampled_from([str(p) for p in PERCENTILES] + ["p99", "P50", "90.0"])
    if key in FLAG_KEYS:
        return st.sampled_from(["0", "1", " 1 "])
    if key == "turns":
        return st.one_of(st.integers(1, 10_000).map(str), st.builds(
            lambda f, m, cv: f"{f}:{m:g}" + (f":{cv:g}" if cv is not None else ""),
            st.sampled_from(["fixed", "exponential", "lognormal", "gamma", "uniform"]),
            st.floats(1, 10_000, allow_nan=False), st.one_of(st.none(), st.floats(0, 20, allow_nan=False))))
    names, _ = CHOICE_SETS[key]
    return st.sampled_from(sorted(names))


def _bad_value(key: str) -> st.SearchStrategy[str]:
    options = [junk, too_long]
    if key in INT_RANGES or key == "n":
        lo, hi = INT_RANGES.get(key, (1, MAX_DEVICES * 100_000))
        options += [st.integers(hi + 1, 10**40).map(str), st.integers(-(10**40), lo - 1).map(str)]
    if key in FLOAT_RANGES:
        lo, hi = FLOAT_RANGES[key]
        options += [st.floats(hi * 1.0001, 1e300).map(repr), st.floats(-1e300, lo).map(repr)]
    return st.one_of(options).filter(lambda t: not is_good(key, t))


JUDGED = [k for k in KEYS if k in KNOWN_KEYS]  # test_the_oracle_knows_every_key fails for a new key
GOOD = {k: _good_value(k) for k in JUDGED}
BAD = {k: _bad_value(k) for k in JUDGED}
EARLIER = {k: st.lists(st.one_of(junk, GOOD[k]), min_size=1, max_size=3) for k in JUDGED}
UNKNOWN_KEYS = st.lists(
    st.text(min_size=1, max_size=60).filter(lambda k: k not in KEYS and k not in PASSTHROUGH_KEYS and k.strip()),
    max_size=2,
    unique=True,
)
UNKNOWN_VALUES = st.one_of(junk, st.lists(junk, max_size=3))
SOME_KEYS = st.lists(st.sampled_from(JUDGED), unique=True, max_size=len(JUDGED))


@st.composite
def queries(draw):
    """A query with some keys good, some bad (maybe repeated, the bad one last), some unknown; the bad keys."""
    params: dict[str, object] = {}
    bad: set[str] = set()
    for key in draw(SOME_KEYS):
        is_bad = draw(st.booleans())
        value = draw(BAD[key] if is_bad else GOOD[key])
        if draw(st.integers(0, 5)) == 0:  # a repeated key: Streamlit hands over a list, the last one counts
            value = [*draw(EARLIER[key]), value]
        params[key] = value
        if is_bad:
            bad.add(key)
    for key in draw(UNKNOWN_KEYS):
        params[key] = draw(UNKNOWN_VALUES)
        bad.add(key[:40])
    return params, bad


def _last(value) -> str:
    return value if isinstance(value, str) else (str(value[-1]) if value else "")


def test_the_oracle_knows_every_key():
    assert set(KEYS) <= KNOWN_KEYS, f"add {set(KEYS) - KNOWN_KEYS} to tests/url_oracle.py"


@FUZZ
@given(queries())
@example(({"tp": "++5"}, {"tp"}))
@example(({"n": "++4"}, {"n"}))
@example(({"isl": "9" * 5000, "osl": ["1", "-1"], "ttft": "nan", "tpot": "1e999", "rate": "0"},
          {"isl", "osl", "ttft", "tpot", "rate"}))  # fmt: skip
def test_parse_query_never_raises_and_names_every_bad_value(case):
    params, bad = case
    inputs, warnings = parse_query(params, CHOICES)

    warned = {w.key for w in warnings}
    assert bad <= warned, f"bad values without a warning: {bad - warned}"
    assert warned <= bad | CROSS_FIELD, f"warnings for good values: {warned - bad - CROSS_FIELD}"
    for w in warnings:
        if w.key in params:
            assert w.value == _last(params[w.key])
        assert f"URL parameter `{w.key}=" in str(w) and w.reason

    # the inputs are valid (model_copy does not validate, so check), build a Scenario, and round-trip
    assert PageInputs.model_validate(inputs.model_dump()) == inputs
    assert isinstance(inputs.scenario(), Scenario)
    assert parse_query(to_query(inputs), CHOICES) == (inputs, [])


@FUZZ
@given(
    st.dictionaries(
        st.one_of(st.sampled_from(KEYS), st.text(max_size=8)),
        st.one_of(st.text(max_size=40), st.lists(st.text(max_size=10), max_size=3), st.none(), st.integers()),
        max_size=12,
    )
)
def test_parse_query_of_arbitrary_mappings_never_raises(params):
    inputs, warnings = parse_query(params, CHOICES)
    assert PageInputs.model_validate(inputs.model_dump()) == inputs
    inputs.scenario()
    assert all(str(w).startswith("URL parameter `") for w in warnings)
