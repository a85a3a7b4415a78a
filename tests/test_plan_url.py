"""app.state.plan_url: the Plan page's URL <-> inputs, the planner request they make, and the Estimate link of a row."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmcap.app.state.plan_url import (
    KEYS,
    PlanInputs,
    estimate_query,
    parse_plan_query,
    plan_defaults,
    plan_query,
    plan_request,
    whatif_changes,
)
from llmcap.app.state.urlstate import choices_from_catalog, parse_query
from llmcap.app.state.workload_url import WorkloadInputs
from llmcap.catalog.loader import load_catalog
from llmcap.load.day import presets
from llmcap.plan.price_options import OPTIONS
from llmcap.plan.request import Candidate

CATALOG = load_catalog()
CHOICES = choices_from_catalog(CATALOG)
DEFAULTS = plan_defaults(CHOICES)
LLAMA8 = "meta-llama/Llama-3.1-8B-Instruct"
HW_IDS = {k: k for k in CATALOG.hardware}


def parse(params):
    return parse_plan_query(params, CHOICES)


def keys_warned(warnings) -> list[str]:
    return [w.key for w in warnings]


def test_landing_defaults_name_catalog_entries_and_round_trip():
    assert PlanInputs() == DEFAULTS  # the catalog has every default id
    assert DEFAULTS.model == LLAMA8 and DEFAULTS.hardware is None
    assert DEFAULTS.weights == ("bf16", "fp8", "int4") and DEFAULTS.engines == ("auto",)
    assert DEFAULTS.price_basis == "cloud"  # renting, unless owned hardware is asked for
    assert parse({}) == (DEFAULTS, [])
    q = plan_query(DEFAULTS)
    assert q["hw"] == "all" and q["isl"] == "1024" and q["rate"] == "10" and q["pct"] == "90"
    assert "e2e" not in q and "maxusd" not in q and "prov" not in q and "usd" not in q
    assert q["basis"] == "cloud" and q["engine"] == "auto"
    assert set(q) <= set(KEYS)
    assert parse(q) == (DEFAULTS, [])
    owned, warnings = parse({"basis": "OWNED"})
    assert owned.price_basis == "owned" and warnings == []
    assert plan_request(owned, CATALOG).pricing.basis == "owned"
    bad, warnings = parse({"basis": "lease"})
    assert bad.price_basis == "cloud" and [w.key for w in warnings] == ["basis"]


def test_a_full_link_parses_without_warnings():
    inputs, warnings = parse(
        {"model": "META-LLAMA/Llama-3.1-8B", "workload": "RAG", "rate": "25.5", "ttft": "500", "tpot": "40",
         "pct": "p99", "e2e": "20000", "hw": "H100_SXM,l4", "prov": "runpod", "usd": "2.5", "maxdev": "16",
         "maxusd": "100", "w": "FP8,int4", "kv": "auto,fp8", "engine": "vllm,SGLang", "disagg": "1", "mixed": "yes",
         "top": "5", "xbw": "+50%", "xflops": "-10", "xprice": "-30", "xrate": "3", "sens": "1"}
    )  # fmt: skip
    assert warnings == []
    assert inputs.model == LLAMA8  # alias -> catalog id
    assert inputs.workload == "rag"
    assert (inputs.rate_rps, inputs.ttft_ms, inputs.tpot_ms, inputs.pct, inputs.e2e_ms) == (
        25.5, 500.0, 40.0, 99, 20000.0,
    )  # fmt: skip
    assert inputs.hardware == ("h100-sxm", "l4")
    assert (inputs.provider, inputs.usd_per_gpu_hour, inputs.max_devices, inputs.max_usd_per_hour) == (
        "RunPod", 2.5, 16, 100.0,
    )  # fmt: skip
    assert inputs.weights == ("fp8", "int4") and inputs.kv == ("auto", "fp8") and inputs.engines == ("vllm", "sglang")
    assert inputs.allow_disagg and inputs.allow_mixed and inputs.top == 5
    assert (inputs.whatif_bw_pct, inputs.whatif_compute_pct, inputs.whatif_price_pct) == (50.0, -10.0, -30.0)
    assert inputs.whatif_traffic_x == 3.0 and inputs.sensitivity
    assert parse(plan_query(inputs)) == (inputs, [])


def test_a_preset_sets_the_lengths_and_they_leave_the_link():
    inputs, warnings = parse({"workload": "chat", "isl": "5", "osl": "7"})
    assert warnings == []
    # catalogs/workloads.yaml: chat means 1,442 prompt and 182 output tokens
    assert (inputs.input_len, inputs.output_len) == (1442, 182)
    q = plan_query(inputs)
    assert q["workload"] == "chat" and "isl" not in q and "osl" not in q
    assert parse({"workload": "fixed", "isl": "2048", "osl": "64"})[0].workload is None


@pytest.mark.parametrize(
    ("key", "value", "field", "reason"),
    [
        ("rate", "abc", "rate_rps", "not a number"),
        ("rate", "0", "rate_rps", "above 0"),
        ("rate", "nan", "rate_rps", "not a number"),
        ("ttft", "0.01", "ttft_ms", "at least 0.1"),
        ("tpot", "-5", "tpot_ms", "at least 0.1"),
        ("pct", "42", "pct", "one of 50, 90, 95, 99"),
        ("isl", "1.5", "input_len", "not a whole number"),
        ("osl", "0", "output_len", "between 1"),
        ("maxdev", "5000", "max_devices", "between 1"),
        ("top", "x", "top", "not a whole number"),
        ("model", "no/such-model", "model", "unknown model"),
        ("workload", "bursty", "workload", "unknown workload preset"),
        ("prov", "acme-cloud", "provider", "unknown cloud provider"),
        ("usd", "0", "usd_per_gpu_hour", "above 0"),
        ("maxusd", "-1", "max_usd_per_hour", "above 0"),
        ("disagg", "maybe", "allow_disagg", "1 or 0"),
        ("xbw", "-95", "whatif_bw_pct", "between -90%"),
        ("xprice", "lots", "whatif_price_pct", "not a percent change"),
        ("xrate", "0", "whatif_traffic_x", "above 0"),
        ("w", "bogus", "weights", "no known weight format"),
        ("engine", "tgi", "engines", "no known engine"),
        ("day", "weekend-rush", "day", "unknown day preset"),
        ("pricing", "cheap,cheaper", "pricing", "no known price option"),
        ("scaleup", "-60", "scale_up_s", "above 0"),
        ("scaleup", "1e999", "scale_up_s", "not a number"),
        ("minrep", "1.5", "min_replicas", "not a whole number"),
        ("minrep", "5000", "min_replicas", "between 0"),
        ("budget", "80", "slo_miss_budget_pct", "at most 50"),
        ("budget", "=cmd|' /C calc'!A0", "slo_miss_budget_pct", "not a number"),
    ],
)
def test_a_bad_value_warns_naming_the_parameter_and_uses_the_default(key, value, field, reason):
    inputs, warnings = parse({key: value, "rate": "3"} if key != "rate" else {key: value})
    assert [w.key for w in warnings if w.key == key] == [key]
    w = next(w for w in warnings if w.key == key)
    assert reason in w.reason, w.reason
    assert getattr(inputs, field) == getattr(DEFAULTS, field)
    assert f"`{key}=" in str(w) and "default" in str(w)


def test_unknown_list_items_are_dropped_with_a_warning_each():
    inputs, warnings = parse({"hw": "h100-sxm,warp-9000,L4,h100-sxm", "w": "fp8,fp7", "kv": "auto,kv9"})
    assert inputs.hardware == ("h100-sxm", "l4")  # duplicates dropped, order kept
    assert inputs.weights == ("fp8",) and inputs.kv == ("auto",)
    assert sorted((w.key, w.value) for w in warnings) == [("hw", "warp-9000"), ("kv", "kv9"), ("w", "fp7")]


def test_unknown_keys_and_overlong_values_warn():
    inputs, warnings = parse({"conc": "16", "model": "x" * 500, "dev": "anything"})
    assert inputs == DEFAULTS
    assert keys_warned(warnings) == ["conc", "model"]  # dev belongs to the custom-device code: not warned
    assert "unknown parameter" in warnings[0].reason and "longer than" in warnings[1].reason


def test_day_view_keys_round_trip_and_read_their_words():
    inputs, warnings = parse({"day": "Consumer-Chat", "pricing": "spot,hosted,bogus", "scaleup": "auto",
                              "minrep": "0", "budget": "0"})  # fmt: skip
    assert [(w.key, w.value) for w in warnings] == [("pricing", "bogus")]
    assert (inputs.day, inputs.pricing, inputs.scale_up_s, inputs.min_replicas, inputs.slo_miss_budget_pct) == (
        "consumer-chat", ("spot", "hosted"), None, 0, 0.0)
    assert parse(plan_query(inputs)) == (inputs, [])
    assert parse({"day": "none", "pricing": "all"}) == (DEFAULTS, [])


def test_optional_limits_read_none_and_any():
    inputs, warnings = parse({"e2e": "none", "maxusd": "none", "usd": "none", "prov": "any", "hw": "ALL"})
    assert warnings == []
    assert inputs == DEFAULTS


ID = st.sampled_from
VALID = st.builds(
    PlanInputs,
    workload=st.none() | ID(sorted(CATALOG.workloads)),
    rate_rps=st.floats(0.001, 1e5, allow_nan=False),
    ttft_ms=st.floats(0.1, 1e6),
    tpot_ms=st.floats(0.1, 1e6),
    pct=ID([50, 90, 95, 99]),
    e2e_ms=st.none() | st.floats(0.1, 1e6),
    hardware=st.none() | st.lists(ID(sorted(CATALOG.hardware)), min_size=1, max_size=6, unique=True).map(tuple),
    provider=st.none() | ID(sorted(set(CHOICES.providers.values()))),
    usd_per_gpu_hour=st.none() | st.floats(0.01, 1e4),
    max_devices=st.integers(1, 4096),
    max_usd_per_hour=st.none() | st.floats(0.01, 1e6),
    weights=st.lists(ID(sorted(CATALOG.formats)), min_size=1, max_size=4, unique=True).map(tuple),
    kv=st.lists(ID(["auto", *sorted(CATALOG.kv_formats)]), min_size=1, max_size=3, unique=True).map(tuple),
    engines=st.lists(ID(["vllm", "sglang", "trtllm", "llama.cpp", "generic"]), min_size=1, unique=True).map(tuple),
    allow_disagg=st.booleans(),
    allow_mixed=st.booleans(),
    top=st.integers(1, 100),
    whatif_bw_pct=st.floats(-90, 1000),
    whatif_traffic_x=st.floats(0.01, 1000),
    sensitivity=st.booleans(),
    day=st.none() | ID(sorted(presets())),
    pricing=st.lists(ID(list(OPTIONS)), min_size=1, max_size=6, unique=True).map(tuple),
    scale_up_s=st.none() | st.floats(0.5, 86_400),
    min_replicas=st.integers(0, 1000),
    slo_miss_budget_pct=st.floats(0, 50),
    extra=st.builds(WorkloadInputs, samples=st.integers(1, 64), max_output_tokens=st.integers(0, 10_000_000)),
)


@settings(max_examples=400, deadline=None)
@given(VALID)
def test_round_trip(inputs):
    if inputs.workload:  # a preset's lengths are its mean lengths
        isl, osl = CHOICES.lengths(inputs.workload)
        inputs = inputs.model_copy(update={"input_len": isl, "output_len": osl})
    assert parse(plan_query(inputs)) == (inputs, [])


TEXT = st.text(max_size=30) | ID(
    ["", " ", "1", "0", "-1", "1e309", "nan", "inf", "all", "auto", "none", ",", "h100-sxm"]
)
QUERY = st.dictionaries(ID([*KEYS, "x", "dev"]), TEXT | st.lists(TEXT, max_size=3), max_size=12)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(QUERY)
def test_any_query_gives_valid_inputs_and_a_request(params):
    inputs, warnings = parse(params)
    assert isinstance(inputs, PlanInputs)
    assert all(w.key in params for w in warnings)
    req = plan_request(inputs, CATALOG)  # never raises for parsed inputs
    assert req.rate_rps == inputs.rate_rps


def test_request_from_fixed_lengths_has_no_spread_and_poisson_arrivals():
    inputs = PlanInputs(rate_rps=4, input_len=2000, output_len=300, pct=99, kv=("auto", "fp8"), top=3)
    req = plan_request(inputs, CATALOG)
    assert (req.input_len, req.output_len, req.input_cv, req.output_cv, req.arrival_cv) == (2000, 300, 0, 0, 1.0)
    assert req.slo.pct == 99.0 and req.kv == (None, "fp8") and req.top == 3 and req.hardware is None
    assert req.workload is None


def test_request_from_a_preset_takes_its_means_spread_and_burstiness():
    req = plan_request(PlanInputs(workload="chat", input_len=1442, output_len=182), CATALOG)
    # catalogs/workloads.yaml, chat: means 1442 / 182 tokens, cv 1.0 each, gamma arrivals with cv 1.41
    assert (req.input_len, req.output_len, req.input_cv, req.output_cv, req.arrival_cv) == (1442, 182, 1.0, 1.0, 1.41)
    assert req.workload == "chat"


def test_whatif_changes_are_scales_and_a_rate_multiplier():
    changes = dict(whatif_changes(PlanInputs(whatif_bw_pct=50, whatif_compute_pct=-10, whatif_traffic_x=3)))
    assert changes == {
        "memory bandwidth +50%": {"mem_bw_scale": 1.5},
        "compute -10%": {"compute_scale": 0.9},
        "prices -20%": {"price_scale": 0.8},
        "traffic x3": {"rate_rps": 3.0},
    }


def candidate(**kw) -> Candidate:
    base = dict(
        hardware="h100-sxm", devices=4, tp=2, pp=1, ep=1, replicas=2, weight_format="fp8", kv_format="fp8",
        engine="vllm", max_seqs=64, mode="aggregated", ttft_ms_p50=1.0, ttft_ms_p90=2.0, tpot_ms_p50=1.0,
        tpot_ms_p90=2.0, e2e_ms_p90=3.0, slo_attainment=0.99, goodput_rps=10.0, max_rate_rps=11.0,
        utilization=0.5, usd_per_hour=20.0, usd_per_million_output_tokens=1.0, joules_per_output_token=0.1,
        output_tokens_per_s_per_device=100.0, price_basis="RunPod 1x H100",
    )  # fmt: skip
    return Candidate(**(base | kw))


def test_estimate_link_opens_the_same_scenario_on_the_estimate_page():
    inputs = PlanInputs(rate_rps=7.5, input_len=3000, output_len=100, ttft_ms=800, tpot_ms=30, pct=99)
    req = plan_request(inputs, CATALOG)
    q = estimate_query(candidate(), inputs, req, HW_IDS)
    page, warnings = parse_query(q, CHOICES)
    assert warnings == []
    assert (page.model, page.hardware, page.tp, page.pp, page.ep, page.replicas) == (LLAMA8, "h100-sxm", 2, 1, 1, 2)
    assert (page.weight_format, page.kv_format, page.engine) == ("fp8", "fp8", "vllm")
    assert (page.input_len, page.output_len, page.rate_rps, page.arrival) == (3000, 100, 7.5, "poisson")
    assert (page.ttft_ms, page.tpot_ms, page.pct) == (800, 30, 99)
    assert page.concurrency == 128  # 64 per replica x 2 replicas
    assert q["n"] == "4" and "prov" not in q and "usd" not in q


def test_estimate_link_carries_preset_burstiness_and_price_basis():
    inputs = PlanInputs(workload="chat", input_len=1442, output_len=182, provider="RunPod")
    q = estimate_query(candidate(), inputs, plan_request(inputs, CATALOG), HW_IDS)
    assert (q["workload"], q["arr"], q["cv"], q["prov"]) == ("chat", "gamma", "1.41", "RunPod")
    own = PlanInputs(usd_per_gpu_hour=1.75)
    assert estimate_query(candidate(), own, plan_request(own, CATALOG), HW_IDS)["usd"] == "1.75"
    tco = estimate_query(
        candidate(price_basis="owned (TCO): $1.20/device-hour"), DEFAULTS, plan_request(DEFAULTS, CATALOG), HW_IDS
    )
    assert tco["prov"] == "tco"


@pytest.mark.parametrize(
    "row",
    [
        {"hardware": "h100-sxm x8 (tp=8, fp8) + l4 x2 (tp=1, fp8)", "mode": "mixed", "devices": 10},
        {"hardware": "h100-sxm (prefill) + l4 (decode)", "mode": "disaggregated 1P:1D"},
        {"hardware": "h100-sxm", "mode": "disaggregated 1P:2D", "devices": 5},  # pools of different layouts
    ],
)
def test_rows_without_a_single_estimate_scenario_get_no_link(row):
    assert estimate_query(candidate(**row), DEFAULTS, plan_request(DEFAULTS, CATALOG), HW_IDS) is None


@pytest.mark.parametrize("key,value", [("smp", "0"), ("smp", "65"), ("smp", "nan"), ("maxout", "0"), ("maxout", "-5"),
                                       ("maxout", "1e9"), ("maxout", "10000001"), ("maxout", "🦙")])  # fmt: skip
def test_bad_samples_and_token_budget_warn_naming_the_key(key, value):
    inputs, warnings = parse({key: value, "rate": "3"})
    assert [w.key for w in warnings] == [key]
    assert inputs.extra.samples == 1 and inputs.extra.max_output_tokens == 0


def test_samples_and_token_budget_reach_the_request():
    inputs, warnings = parse({"rate": "3", "workload": "reasoning", "smp": "8", "maxout": "4000"})
    assert warnings == []
    req = plan_request(inputs, CATALOG)
    assert req.samples == 8 and req.max_output_tokens == 4000 and req.rate_rps == 3
    assert plan_query(inputs)["smp"] == "8" and plan_query(inputs)["maxout"] == "4000"
