"""estimate.compare (side-by-side rows, vary-one-parameter), io.scenario_io (URL and file forms), catalog.custom."""

from __future__ import annotations

import json

import pytest

from llmcap.catalog.custom import with_custom
from llmcap.catalog.loader import load_catalog
from llmcap.estimate.compare import AXES, evaluate_rows, parse_values, vary_rows
from llmcap.estimate.single import estimate
from llmcap.io.scenario_io import (
    MAX_SCENARIOS,
    decode_devices,
    decode_scenario,
    decode_scenarios,
    dump_scenario_file,
    encode_devices,
    encode_scenario,
    encode_scenarios,
    load_scenario_file,
)
from llmcap.model.hfconfig import parse_config
from llmcap.scenario import Scenario

LLAMA8 = "meta-llama/Llama-3.1-8B-Instruct"
BASE = Scenario(model=LLAMA8, hardware="h100-sxm", weight_format="fp8", kv_format="fp8", engine="vllm", concurrency=16)


@pytest.fixture(scope="module")
def cat():
    return load_catalog()


def custom_device(**over):
    # as the custom-device form builds one (app/custom_forms.py): the catalog entry's figures, no field_sources
    h100 = load_catalog().device("h100-sxm").model_dump(exclude={"field_sources"})
    return type(load_catalog().device("h100-sxm")).model_validate(
        {**h100, "id": "my-gpu", "name": "My GPU", "memory_gb": 160, "source": "test", **over}
    )


# -- compact URL form -----------------------------------------------------------------------------------------------
def test_encoded_scenario_is_short_and_round_trips():
    text = encode_scenario(BASE)
    assert text == "meta-llama/Llama-3.1-8B-Instruct,h100-sxm,,,,,fp8,fp8,vllm,,,16"
    assert decode_scenario(text) == BASE
    plain = Scenario(model=LLAMA8, hardware="l40s")
    assert encode_scenario(plain) == f"{LLAMA8},l40s"
    assert decode_scenario(encode_scenario(plain)) == plain
    many = [BASE, plain, BASE.model_copy(update={"concurrency": "max", "tp": 2})]
    assert decode_scenarios(encode_scenarios(many)) == (many, [])


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (f"{LLAMA8},h100-sxm,zero", "tp"),
        (f"{LLAMA8},h100-sxm,,,,,,,warp", "engine"),
        (f"{LLAMA8},h100-sxm,,,,,,,,,,lots", "concurrency"),
        (f"{LLAMA8},h100-sxm,1,,2", "ep=2 must divide tp=1"),
        (",h100-sxm", "model"),
        ("a,b,1,1,1,1,bf16,bf16,vllm,1,1,1,extra", "at most 12"),
    ],
)
def test_bad_scenario_text_names_the_parameter(text, named):
    with pytest.raises(ValueError, match=named):
        decode_scenario(text)


def test_bad_parts_are_left_out_with_a_message_and_at_most_six_are_kept():
    good = encode_scenario(BASE)
    scns, problems = decode_scenarios(f"{good};{LLAMA8},h100-sxm,-3;{good}")
    assert scns == [BASE, BASE]
    assert len(problems) == 1 and problems[0].startswith("scenario 2: tp")
    scns, problems = decode_scenarios(";".join([good] * (MAX_SCENARIOS + 2)))
    assert len(scns) == MAX_SCENARIOS and "only the first 6" in problems[0]


def test_custom_devices_round_trip_through_the_url_form():
    dev = custom_device()
    text = encode_devices([dev])
    assert text.isascii() and "=" not in text and len(text) < 1000
    assert decode_devices(text) == [dev]


@pytest.mark.parametrize(
    "text", ["not base64 !!", "AAAA", encode_devices([custom_device()])[:-6], encode_devices([]).replace("e", "f")]
)
def test_bad_device_text_is_a_clear_error(text):
    with pytest.raises(ValueError, match="device"):
        decode_devices(text)


# -- scenario file ---------------------------------------------------------------------------------------------------
def test_scenario_file_round_trips_scenarios_devices_and_models(cat):
    cfg = json.loads(cat.model(LLAMA8).config_path.read_text())
    arch = parse_config(cfg)
    text = dump_scenario_file([BASE], {"my-gpu": custom_device()}, {"my-llama": arch})
    doc = load_scenario_file(text.encode())
    assert doc.scenarios == [BASE]
    assert doc.custom_devices == [custom_device()]
    assert doc.custom_models == {"my-llama": arch}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not an llmcap scenario file"),
        (b'{"llmcap_scenarios": 1, "scenarios": [{"model": "m", "hardware": "h", "tp": 0}]}', "scenarios.0.tp"),
        (b'{"llmcap_scenarios": 2}', "llmcap_scenarios"),
        (b'{"llmcap_scenarios": 1, "custom_models": {"bad name!": {}}}', "custom_models"),
    ],
)
def test_bad_scenario_file_is_a_clear_error(data, message):
    with pytest.raises(ValueError, match=message):
        load_scenario_file(data)


# -- custom entries --------------------------------------------------------------------------------------------------
def test_custom_device_and_model_are_usable_by_id(cat):
    arch = parse_config(json.loads(cat.model(LLAMA8).config_path.read_text()))
    ext = with_custom(cat, {"my-gpu": custom_device()}, {"my-llama": arch})
    scn = Scenario(model="my-llama", hardware="my-gpu", weight_format="fp8", engine="vllm", concurrency=8)
    row = evaluate_rows([scn], ext)[0]
    assert row["status"] == "ok"
    assert row["capacity_gb_per_device"] == 160
    # same architecture and same silicon as the catalog's H100 + Llama: same latency, more memory
    ref = evaluate_rows([scn.model_copy(update={"model": LLAMA8, "hardware": "h100-sxm"})], cat)[0]
    assert row["tpot_ms"] == pytest.approx(ref["tpot_ms"])
    assert row["weights_gb_per_device"] == pytest.approx(ref["weights_gb_per_device"])
    assert "my-gpu" not in cat.hardware  # the shared catalog is untouched


def test_custom_ids_may_not_shadow_the_catalog(cat):
    with pytest.raises(ValueError, match="h100-sxm"):
        with_custom(cat, {"h100-sxm": custom_device(id="h100-sxm")})
    assert with_custom(cat) is cat


# -- side-by-side rows -----------------------------------------------------------------------------------------------
def test_rows_equal_estimate_for_each_scenario(cat):
    scns = [
        BASE,
        BASE.model_copy(update={"hardware": "a100-sxm-80gb", "weight_format": "bf16", "kv_format": None}),
        Scenario(model=LLAMA8, hardware="l40s", tp=2, replicas=2, engine="sglang", concurrency=64),
    ]
    rows = evaluate_rows(scns, cat)
    for scn, row in zip(scns, rows, strict=True):
        est = estimate(scn, cat)
        assert row["status"] == est.status == "ok"
        assert row["ttft_ms"] == pytest.approx(est.serving.ttft_ms)
        assert row["tpot_ms"] == pytest.approx(est.serving.tpot_ms)
        assert row["output_tokens_per_s"] == pytest.approx(est.serving.output_tokens_per_s)
        assert row["output_tokens_per_s_per_device"] == pytest.approx(est.serving.output_tokens_per_s_per_device)
        assert row["weights_gb_per_device"] == pytest.approx(est.memory.weights_gb)
        assert row["kv_gb_per_device"] == pytest.approx(est.memory.kv_gb)
        assert row["free_gb_per_device"] == pytest.approx(est.memory.free_gb)
        assert row["reserved_gb_per_device"] == pytest.approx(est.memory.reserved_gb)
        parts = ("weights", "kv", "activations", "overhead", "reserved", "free")
        assert sum(row[f"{p}_gb_per_device"] for p in parts) == pytest.approx(row["capacity_gb_per_device"])
        assert row["max_concurrency"] == est.memory.max_concurrency
        assert (row["prefill_bound"], row["decode_bound"]) == (est.prefill.bound, est.decode.bound)
    assert rows[2]["devices"] == 4
    assert rows[2]["output_tokens_per_s_per_device"] == pytest.approx(rows[2]["output_tokens_per_s"] / 4)


def test_rows_say_why_a_scenario_failed_or_does_not_fit(cat):
    big = Scenario(model="meta-llama/Llama-3.1-70B-Instruct", hardware="l4")
    rows = evaluate_rows([big, Scenario(model="no-such-model", hardware="h100-sxm"), BASE], cat, explain=True)
    assert [r["status"] for r in rows] == ["does_not_fit", "error", "ok"]
    assert rows[0]["message"] == estimate(big, cat).message and "short by" in rows[0]["message"]
    assert rows[0]["ttft_ms"] is None and rows[0]["weights_gb_per_device"] > 24
    assert "unknown model 'no-such-model'" in rows[1]["message"]
    only_bad = evaluate_rows([Scenario(model="x", hardware="nowhere")], cat)
    assert only_bad[0]["status"] == "error" and "unknown" in only_bad[0]["message"]


# -- vary one parameter ----------------------------------------------------------------------------------------------
def test_vary_concurrency_is_one_row_per_point_and_throughput_grows(cat):
    values = [1, 4, 16, 64]
    rows, problems = vary_rows([BASE, BASE.model_copy(update={"hardware": "h200-sxm"})], "concurrency", values, cat)
    assert problems == [] and len(rows) == 8
    first = [r for r in rows if r["scenario"].startswith("S1")]
    assert [r["concurrency"] for r in first] == values
    tps = [r["output_tokens_per_s"] for r in first]
    assert tps == sorted(tps) and tps[-1] > 4 * tps[0]
    for r in first:
        scn = BASE.model_copy(update={"concurrency": r["concurrency"]})
        assert r["tpot_ms"] == pytest.approx(estimate(scn, cat).serving.tpot_ms)


def test_vary_reports_points_that_cannot_exist(cat):
    moe = Scenario(model="Qwen/Qwen3-30B-A3B", hardware="h100-sxm", tp=2, ep=2)
    rows, problems = vary_rows([moe], "tp", [1, 2, 4], cat)
    assert sorted(r["tp"] for r in rows) == [2, 4]
    assert any("tp=1" in p and "ep=2 must divide tp=1" in p for p in problems)
    rows, problems = vary_rows([BASE], "weight_format", ["bf16", "q4-k-m"], cat)
    assert [r["weight_format"] for r in rows] == ["bf16"]
    assert problems == ["S1: format 'q4-k-m' runs on llama.cpp, not vllm"]


def test_parse_values():
    assert parse_values("concurrency", "8, 1,2 ,8") == [1, 2, 8]
    assert parse_values("weight_format", "fp8,bf16,fp8") == ["fp8", "bf16"]
    for axis, text, msg in [
        ("concurrency", "1, two", "'two' is not a whole number"),
        ("input_len", "0", "out of range"),
        ("tp", " , ", "at least one value"),
        ("nope", "1", "unknown axis"),
    ]:
        with pytest.raises(ValueError, match=msg):
            parse_values(axis, text)
    assert set(AXES) == {"concurrency", "input_len", "tp", "weight_format"}
