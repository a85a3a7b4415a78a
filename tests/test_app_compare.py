"""The Compare page under AppTest: URL <-> widgets, numbers equal core's, bad input is a warning, files load."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from llmcap.catalog.loader import load_catalog
from llmcap.estimate.compare import vary_rows
from llmcap.estimate.single import estimate
from llmcap.io.scenario_io import decode_scenarios, dump_scenario_file, encode_devices, encode_scenarios
from llmcap.scenario import Scenario

APP = Path(__file__).resolve().parents[1] / "app" / "streamlit_app.py"
LLAMA8 = "meta-llama/Llama-3.1-8B-Instruct"


def open_compare(**params: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    for k, v in params.items():
        at.query_params[k] = v
    at.switch_page("views/compare.py").run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def table(at: AppTest):
    return at.dataframe[0].value


def chart_rows(at: AppTest, i: int) -> int:
    chart = at.get("vega_lite_chart")[i]
    return sum(pa.ipc.open_stream(d.data.data).read_all().num_rows for d in chart.proto.datasets)


def assert_row_matches_estimate(row, scn: Scenario) -> None:
    est = estimate(scn, load_catalog())
    assert row["status"] == est.status
    assert row["ttft_ms"] == pytest.approx(est.serving.ttft_ms)
    assert row["tpot_ms"] == pytest.approx(est.serving.tpot_ms)
    assert row["output_tokens_per_s"] == pytest.approx(est.serving.output_tokens_per_s)
    assert row["output_tokens_per_s_per_device"] == pytest.approx(est.serving.output_tokens_per_s_per_device)
    assert row["weights_gb_per_device"] == pytest.approx(est.memory.weights_gb)
    assert row["decode_bound"] == est.decode.bound


def test_default_page_shows_three_scenarios_equal_to_core():
    at = open_compare()
    assert at.title[0].value == "Compare"
    assert not at.error and not at.warning
    shown = table(at)
    scns, problems = decode_scenarios(at.query_params["cmp"])
    assert problems == [] and len(scns) == len(shown) == 3
    for (_, row), scn in zip(shown.iterrows(), scns, strict=True):
        assert_row_matches_estimate(row, scn)
    assert [b.label for b in at.get("download_button")].count("PNG") == 4  # bars, memory, vary lines, per answer
    assert "Download compare CSV" in [b.label for b in at.get("download_button")]


def test_url_restores_the_scenarios_and_the_sweep():
    scns = [
        Scenario(model=LLAMA8, hardware="h200-sxm", weight_format="fp8", engine="sglang", concurrency=32),
        Scenario(model="Qwen/Qwen3-32B", hardware="h100-sxm", tp=2, input_len=4096, output_len=512, concurrency="max"),
    ]
    at = open_compare(cmp=encode_scenarios(scns), vary="tp", vals="1,2,4")
    assert not at.warning, [w.value for w in at.warning]
    assert at.number_input(key="cmp_n").value == 2
    assert at.selectbox(key="cmp1_model").value == "Qwen/Qwen3-32B"
    assert at.number_input(key="cmp1_tp").value == 2
    assert at.text_input(key="cmp1_concurrency").value == "max"
    assert at.selectbox(key="cmp0_engine").value == "sglang"
    for (_, row), scn in zip(table(at).iterrows(), scns, strict=True):
        assert_row_matches_estimate(row, scn)
    assert at.selectbox(key="cmp_vary").value == "tp"
    assert at.text_input(key="cmp_vals_tp").value == "1,2,4"
    expected, _ = vary_rows(scns, "tp", [1, 2, 4], load_catalog())
    vary = at.dataframe[1].value
    assert len(vary) == len(expected)
    assert list(vary["tpot_ms"].fillna(-1)) == pytest.approx([r["tpot_ms"] or -1 for r in expected])


def test_changing_a_widget_changes_the_numbers_and_the_url():
    at = open_compare()
    at.selectbox(key="cmp1_hardware").set_value("h200-sxm").run()
    at.number_input(key="cmp1_input_len").set_value(8192).run()
    assert not at.exception
    scns, _ = decode_scenarios(at.query_params["cmp"])
    assert scns[1].hardware == "h200-sxm" and scns[1].input_len == 8192
    assert_row_matches_estimate(table(at).iloc[1], scns[1])

    at.number_input(key="cmp_n").set_value(4).run()
    assert len(table(at)) == 4
    assert decode_scenarios(at.query_params["cmp"])[0][3] == scns[2]  # a new scenario copies the last


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"cmp": f"{LLAMA8},h100-sxm,zero"}, "`cmp`: scenario 1: tp"),
        ({"cmp": f"{LLAMA8},no-such-gpu"}, "unknown hardware 'no-such-gpu'"),
        ({"cmp": f"{LLAMA8},h100-sxm,,,,,bogus-format"}, "unknown weight_format 'bogus-format'"),
        ({"vary": "colour"}, "`vary`"),
        ({"vary": "concurrency", "vals": "1,lots"}, "`vals`"),
        ({"dev": "%%%"}, "`dev`"),
    ],
)
def test_bad_url_values_warn_with_the_parameter_and_fall_back(params, named):
    at = open_compare(**params)
    assert not at.error
    warnings = " ".join(w.value for w in at.warning)
    assert named in warnings
    assert len(table(at)) >= 1  # something sensible is still shown


def test_bad_widget_values_leave_the_scenario_out_with_a_warning():
    at = open_compare()
    at.text_input(key="cmp0_concurrency").set_value("lots").run()
    assert not at.exception
    assert any("S1" in w.value and "concurrency" in w.value for w in at.warning)
    assert len(table(at)) == 2
    at.text_input(key="cmp0_concurrency").set_value("8").run()
    at.number_input(key="cmp0_ep").set_value(2).run()
    assert any("ep=2 must divide tp=1" in w.value for w in at.warning)
    at.text_input(key="cmp_vals_concurrency").set_value("4, x").run()
    assert any("'x' is not a whole number" in w.value for w in at.warning)


def test_a_model_that_does_not_fit_says_why():
    big = Scenario(model="meta-llama/Llama-3.1-70B-Instruct", hardware="l4")
    at = open_compare(cmp=encode_scenarios([big]))
    assert table(at).iloc[0]["status"] == "does_not_fit"
    assert any(estimate(big, load_catalog()).message in i.value for i in at.info)


def test_vary_format_draws_one_point_per_fitting_combination():
    at = open_compare()
    at.selectbox(key="cmp_vary").set_value("weight_format").run()
    at.text_input(key="cmp_vals_weight_format").set_value("bf16, fp8, int4").run()
    assert not at.exception and not at.warning
    assert at.query_params["vary"] == "weight_format" and at.query_params["vals"] == "bf16,fp8,int4"
    assert len(at.dataframe[1].value) == 9
    assert chart_rows(at, 2) == 9 * 4  # four metrics per point, long form


def test_scenario_file_and_custom_device_in_the_url():
    h100 = load_catalog().device("h100-sxm")
    mine = h100.model_copy(update={"id": "my-h100", "name": "My H100", "memory_gb": 141.0})
    at = open_compare(dev=encode_devices([mine]), cmp=f"{LLAMA8},my-h100,,,,,fp8")
    assert not at.warning, [w.value for w in at.warning]
    assert at.selectbox(key="cmp0_hardware").value == "my-h100"
    assert table(at).iloc[0]["capacity_gb_per_device"] == 141.0

    scns = [Scenario(model=LLAMA8, hardware="l40s", weight_format="fp8", concurrency=4)]
    text = dump_scenario_file(scns, {}, {})
    at.sidebar.get("file_uploader")[0].set_value(("s.json", text.encode(), "application/json")).run()
    assert not at.exception
    assert decode_scenarios(at.query_params["cmp"])[0] == scns
    assert_row_matches_estimate(table(at).iloc[0], scns[0])

    at.sidebar.get("file_uploader")[0].set_value(("bad.json", b"{}", "application/json")).run()
    assert any("not an llmcap scenario file" in w.value for w in at.warning)
    assert json.loads(text)["scenarios"][0]["hardware"] == "l40s"
