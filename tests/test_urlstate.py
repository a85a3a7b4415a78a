"""llmcap.app.state.urlstate: URL query parameters <-> the Estimate page's inputs, with a warning per bad parameter."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmcap.app.state.urlstate import KEYS, PERCENTILES, PageInputs, choices_from_catalog, parse_query, to_query
from llmcap.catalog.loader import load_catalog
from llmcap.scenario import Scenario

CATALOG = load_catalog()
CHOICES = choices_from_catalog(CATALOG)
DEFAULTS = PageInputs()
SHARED = {"model": "meta-llama/Llama-3.1-8B-Instruct", "hw": "h100-sxm", "tp": "1", "w": "fp8", "kv": "fp8",
          "isl": "1024", "osl": "256", "conc": "16"}  # fmt: skip


def parse(params):
    return parse_query(params, CHOICES)


def test_the_shared_link_parses_without_warnings():
    inputs, warnings = parse(SHARED)
    assert warnings == []
    assert inputs.model == "meta-llama/Llama-3.1-8B-Instruct"
    assert inputs.hardware == "h100-sxm"
    assert (inputs.tp, inputs.weight_format, inputs.kv_format) == (1, "fp8", "fp8")
    assert (inputs.input_len, inputs.output_len, inputs.concurrency) == (1024, 256, 16)
    assert inputs.scenario() == Scenario(model="meta-llama/Llama-3.1-8B-Instruct", hardware="h100-sxm",
                                         weight_format="fp8", kv_format="fp8", input_len=1024, output_len=256,
                                         concurrency=16)  # fmt: skip


def test_empty_query_gives_the_defaults():
    assert parse({}) == (DEFAULTS, [])
    # the landing defaults name real catalog entries
    assert DEFAULTS.model in {m.meta.id for m in CATALOG.models.values()}
    assert DEFAULTS.hardware in CATALOG.hardware
    assert DEFAULTS.weight_format in CATALOG.formats


def test_ids_are_matched_like_the_cli():
    inputs, warnings = parse({"model": "META-LLAMA/Llama-3.1-8B", "hw": "H100_SXM", "w": "FP8", "engine": "VLLM"})
    assert warnings == []
    assert inputs.model == "meta-llama/Llama-3.1-8B-Instruct"  # an alias resolves to the catalog id
    assert (inputs.hardware, inputs.weight_format, inputs.engine) == ("h100-sxm", "fp8", "vllm")


@pytest.mark.parametrize(
    ("key", "value", "field", "reason"),
    [
        ("tp", "abc", "tp", "not a whole number"),
        ("tp", "0", "tp", "between 1"),
        ("tp", "-2", "tp", "not a whole number"),
        ("tp", "1e3", "tp", "not a whole number"),
        ("replicas", "100001", "replicas", "between 1"),
        ("isl", "99999999999999999999", "input_len", "between"),
        ("osl", "2.5", "output_len", "not a whole number"),
        ("conc", "lots", "concurrency", "or 'max'"),
        ("conc", "0", "concurrency", "or 'max'"),
        ("ttft", "nan", "ttft_ms", "not a number"),
        ("tpot", "inf", "tpot_ms", "not a number"),
        ("tpot", "-5", "tpot_ms", "at least"),
        ("rate", "0", "rate_rps", "above 0"),
        ("pct", "42", "pct", "one of"),
        ("sim", "yes", "simulate", "0 or 1"),
        ("sim", "2", "simulate", "0 or 1"),
        ("model", "no-such/model", "model", "unknown model"),
        ("hw", "h100-sx", "hardware", "unknown hardware"),
        ("w", "fp7", "weight_format", "unknown weight format"),
        ("kv", "fp9", "kv_format", "unknown KV-cache format"),
        ("engine", "tgi", "engine", "unknown engine"),
        ("workload", "gaming", "workload", "unknown workload"),
    ],
)
def test_a_bad_value_warns_naming_the_parameter_and_falls_back(key, value, field, reason):
    inputs, warnings = parse({**SHARED, key: value})
    assert len(warnings) == 1, warnings
    w = warnings[0]
    assert w.key == key and w.value == value
    assert reason in w.reason
    assert f"`{key}=" in str(w) and "default" in str(w)
    assert getattr(inputs, field) == getattr(DEFAULTS, field)
    # every other parameter of the link still applies
    good, _ = parse(SHARED)
    others = {f for f in PageInputs.model_fields if f != field}
    assert {f: getattr(inputs, f) for f in others} == {f: getattr(good, f) for f in others}


def test_unknown_and_overlong_parameters():
    inputs, warnings = parse({"foo": "1", "model": "x" * 500})
    assert inputs == DEFAULTS
    assert [w.key for w in warnings] == ["foo", "model"]
    assert "ignored" in str(warnings[0])
    assert "longer than" in warnings[1].reason


def test_dev_belongs_to_the_custom_device_module_and_is_not_warned_about():
    assert parse({"dev": "anything"}) == (DEFAULTS, [])


def test_ep_must_divide_tp():
    inputs, warnings = parse({"tp": "4", "ep": "3"})
    assert (inputs.tp, inputs.ep) == (4, 1)
    assert [w.key for w in warnings] == ["ep"]
    assert "divide tp=4" in warnings[0].reason
    inputs, warnings = parse({"tp": "8", "ep": "4"})
    assert (inputs.tp, inputs.ep, warnings) == (8, 4, [])


def test_devices_n_sets_or_checks_replicas():
    inputs, warnings = parse({"tp": "2", "n": "8"})
    assert (inputs.replicas, inputs.devices, warnings) == (4, 8, [])
    inputs, warnings = parse({"tp": "2", "n": "7"})
    assert inputs.replicas == 1 and [w.key for w in warnings] == ["n"]
    inputs, warnings = parse({"tp": "2", "replicas": "3", "n": "8"})
    assert inputs.replicas == 3 and [w.key for w in warnings] == ["n"]
    assert "tp*pp*replicas=6" in warnings[0].reason


def test_gguf_format_needs_llama_cpp():
    inputs, warnings = parse({"w": "q4-k-m", "engine": "vllm"})
    assert (inputs.weight_format, inputs.engine) == ("q4-k-m", "generic")
    assert [w.key for w in warnings] == ["engine"]
    inputs, warnings = parse({"w": "q4-k-m", "engine": "llama.cpp"})
    assert (inputs.weight_format, inputs.engine, warnings) == ("q4-k-m", "llama.cpp", [])


def test_workload_preset_sets_the_mean_lengths():
    chat = CATALOG.workload("chat")
    inputs, warnings = parse({"workload": "chat", "isl": "5", "osl": "5"})
    assert warnings == []
    assert inputs.workload == "chat"
    assert inputs.input_len == round(chat.input_tokens.mean)
    assert inputs.output_len == round(chat.output_tokens.mean)
    assert parse({"workload": "fixed"})[0].workload is None


def test_concurrency_max_percentile_forms_and_repeated_keys():
    assert parse({"conc": "MAX"})[0].concurrency == "max"
    assert parse({"pct": "p99"})[0].pct == 99
    assert parse({"pct": "95.0"})[0].pct == 95
    assert parse({"tp": ["8", "2"]})[0].tp == 2  # the last value wins, as in st.query_params


def test_to_query_writes_every_key_in_order():
    q = to_query(parse(SHARED)[0])
    assert list(q) == ["model", "hw", "n", "tp", "pp", "ep", "dp", "replicas", "w", "kv", "engine", "isl", "osl",
                       "conc", "ttft", "tpot", "pct", "region"]  # fmt: skip
    assert q["n"] == "1" and q["ttft"] == "2000" and q["kv"] == "fp8" and q["region"] == "us-east-virginia"
    with_preset = to_query(DEFAULTS.model_copy(update={"workload": "rag", "rate_rps": 2.5}))
    assert "isl" not in with_preset and with_preset["workload"] == "rag" and with_preset["rate"] == "2.5"
    assert with_preset["arr"] == "poisson" and "cv" not in with_preset
    assert with_preset["sim"] == "0"  # request-rate mode says which method it uses
    assert list(with_preset)[list(with_preset).index("arr") + 1] == "sim"


def test_sim_chooses_the_simulator_and_round_trips():
    assert parse({**SHARED, "rate": "4"})[0].simulate is False  # the analytic model by default
    inputs, warnings = parse({**SHARED, "rate": "4", "sim": "1"})
    assert (inputs.simulate, warnings) == (True, [])
    assert to_query(inputs)["sim"] == "1" and parse(to_query(inputs)) == (inputs, [])
    assert parse({"sim": " 0 "})[0].simulate is False
    # in concurrency mode sim only travels when set, so the choice survives a visit to the closed loop
    closed = parse({**SHARED, "sim": "1"})[0]
    assert closed.rate_rps is None and to_query(closed)["sim"] == "1"
    assert "sim" not in to_query(parse(SHARED)[0])
    w = parse({"sim": "true"})[1][0]
    assert str(w) == "URL parameter `sim=true`: must be 0 or 1; using the default (0)."


def test_open_loop_pricing_and_region_keys_round_trip():
    params = {**SHARED, "rate": "7.5", "arr": "GAMMA", "cv": "2", "prov": "aws", "region": "EU_SWEDEN"}
    inputs, warnings = parse(params)
    assert warnings == []
    assert (inputs.rate_rps, inputs.arrival, inputs.cv) == (7.5, "gamma", 2.0)
    assert (inputs.provider, inputs.usd_per_gpu_hour, inputs.region) == ("AWS", None, "eu-sweden")
    q = to_query(inputs)
    assert (q["rate"], q["arr"], q["cv"], q["prov"], q["region"]) == ("7.5", "gamma", "2", "AWS", "eu-sweden")
    assert parse(q) == (inputs, [])
    own = parse({"usd": "2.25"})[0]
    assert own.usd_per_gpu_hour == 2.25 and to_query(own)["usd"] == "2.25" and "prov" not in to_query(own)
    assert parse({"prov": "TCO"})[0].provider == "tco"


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("rate", "-1", "above 0"),
        ("rate", "inf", "not a number"),
        ("arr", "weibull", "unknown arrival process"),
        ("cv", "0", "above 0"),
        ("cv", "50", "at most 20"),
        ("prov", "nowhere", "unknown cloud provider"),
        ("usd", "0", "above 0"),
        ("usd", "abc", "not a number"),
        ("region", "atlantis", "unknown carbon region"),
    ],
)
def test_bad_open_loop_and_pricing_values_warn_and_fall_back(key, value, reason):
    inputs, warnings = parse({key: value})
    assert inputs == DEFAULTS
    assert len(warnings) == 1 and warnings[0].key == key and reason in warnings[0].reason


def test_usd_wins_over_a_provider():
    inputs, warnings = parse({"usd": "3", "prov": "AWS"})
    assert (inputs.usd_per_gpu_hour, inputs.provider) == (3.0, None)
    assert [w.key for w in warnings] == ["prov"]


def test_custom_devices_and_models_join_the_choices():
    dev = CATALOG.device("h100-sxm").model_copy(update={"id": "my-gpu", "name": "My GPU"})
    choices = choices_from_catalog(CATALOG, {"my-gpu": dev}, {"uploaded/my-model": object()})
    inputs, warnings = parse_query({"hw": "MY_GPU", "model": "uploaded/my-model"}, choices)
    assert (inputs.hardware, inputs.model, warnings) == ("my-gpu", "uploaded/my-model", [])


# -- property tests: any query parses to valid inputs; valid inputs survive the round trip --------------

ids = st.sampled_from
TEXT = st.text(max_size=30)
VALUE = st.one_of(
    TEXT,
    st.integers(-(10**12), 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.lists(TEXT, max_size=3),
)
QUERY = st.dictionaries(st.one_of(st.sampled_from(KEYS), TEXT), VALUE, max_size=12)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(QUERY)
def test_any_query_gives_valid_inputs_and_only_named_warnings(params):
    inputs, warnings = parse(params)
    assert isinstance(inputs, PageInputs)
    inputs.scenario()  # always a valid Scenario (layout rules included)
    assert all(w.key and str(w) for w in warnings)
    assert {w.key for w in warnings} <= {str(k)[:40] for k in params}
    # what was written back parses to the same inputs without complaint
    assert parse(to_query(inputs)) == (inputs, [])


VALID = st.fixed_dictionaries(
    {
        "model": ids(sorted({m.meta.id for m in CATALOG.models.values()})),
        "hw": ids(sorted(CATALOG.hardware)),
        "tp": ids(["1", "2", "4", "8"]),
        "pp": st.integers(1, 8).map(str),
        "replicas": st.integers(1, 1000).map(str),
        "w": ids([k for k, f in CATALOG.formats.items() if f.engines is None]),
        "kv": ids(["auto", *CATALOG.kv_formats]),
        "engine": ids(["vllm", "sglang", "trtllm", "generic"]),
        "isl": st.integers(1, 10_000_000).map(str),
        "osl": st.integers(1, 10_000_000).map(str),
        "conc": st.one_of(st.just("max"), st.integers(1, 1_000_000).map(str)),
        "ttft": st.floats(0.1, 1e7).map(repr),
        "tpot": st.floats(0.1, 1e7).map(repr),
        "pct": ids([str(p) for p in PERCENTILES]),
        "rate": st.floats(1e-3, 1e6).map(repr),
        "arr": ids(["poisson", "gamma"]),
        "cv": st.floats(0.01, 20).map(repr),
        "sim": ids(["0", "1"]),
        "prov": ids(sorted({o.provider for o in CATALOG.cloud_prices.values()}) + ["tco"]),
        "region": ids(sorted(CATALOG.carbon)),
    }
)


@settings(max_examples=500, deadline=None)
@given(VALID)
def test_valid_queries_parse_cleanly_and_round_trip(params):
    inputs, warnings = parse(params)
    assert warnings == []
    assert inputs.tp == int(params["tp"]) and inputs.input_len == int(params["isl"])
    assert inputs.ttft_ms == float(params["ttft"])
    assert inputs.rate_rps == float(params["rate"]) and inputs.region == params["region"]
    assert inputs.simulate == (params["sim"] == "1")
    assert parse(to_query(inputs)) == (inputs, [])
