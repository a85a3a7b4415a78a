"""The Estimate page under Streamlit's AppTest: shown numbers equal core's, URL <-> widgets, bad URLs."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from llmcap.catalog.custom import with_custom
from llmcap.catalog.loader import load_catalog
from llmcap.economics.operating_point import closed_loop_costs
from llmcap.estimate.single import estimate
from llmcap.load.rate import estimate_load
from llmcap.scenario import Pricing, Scenario, Slo, Traffic

APP = Path(__file__).resolve().parents[1] / "app" / "streamlit_app.py"
CATALOG = load_catalog()
SHARED = {"model": "meta-llama/Llama-3.1-8B-Instruct", "hw": "h100-sxm", "tp": "1", "w": "fp8", "kv": "fp8",
          "isl": "1024", "osl": "256", "conc": "16"}  # fmt: skip
SHARED_SCN = Scenario(model="meta-llama/Llama-3.1-8B-Instruct", hardware="h100-sxm", weight_format="fp8",
                      kv_format="fp8", input_len=1024, output_len=256, concurrency=16)  # fmt: skip
LABELS = ["Fits", "TTFT", "TPOT", "Output tokens/s", "$/million output tokens", "J/token", "Prefill bound",
          "Decode bound"]  # fmt: skip
RATE_LABELS = ["Fits", "TTFT p90", "TPOT p90", "Output tokens/s", "$/million output tokens", "J/token",
               "Prefill bound", "Decode bound", "Goodput", "Max rate", "SLO attainment", "$/hour"]  # fmt: skip


def run(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    if query:
        at.query_params.update(query)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def qp(at: AppTest) -> dict[str, str]:
    """The app's query parameters as key -> value (AppTest holds a value or a list of them)."""
    return {k: (v if isinstance(v, str) else v[-1]) for k, v in at.query_params.items()}


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def shown_number(text: str, unit: str) -> tuple[float, float]:
    """The number in a tile and half a unit of its last shown digit (the rounding allowance)."""
    m = re.fullmatch(r"([\d,]+(?:\.(\d+))?) (ms|s|tok/s)", text)
    assert m, f"{text!r} is not a number with a unit"
    value = float(m.group(1).replace(",", ""))
    half = 0.5 * 10 ** -len(m.group(2) or "")
    scale = 1e3 if m.group(3) == "s" and unit == "ms" else 1.0
    assert m.group(3) in ((unit, "s") if unit == "ms" else (unit,))
    return value * scale, half * scale


def assert_shows(text: str, expected: float, unit: str) -> None:
    value, allowance = shown_number(text, unit)
    assert abs(value - expected) <= allowance + 1e-9, (text, expected)


def shown_value(text: str, prefix: str = "", suffix: str = "") -> tuple[float, float]:
    """The number in a tile such as "$0.1750" or "0.090 J" or "33.64 req/s", and half its last digit."""
    m = re.fullmatch(re.escape(prefix) + r"([\d,]+(?:\.(\d+))?)" + re.escape(suffix), text)
    assert m, f"{text!r} is not {prefix}NUMBER{suffix}"
    return float(m.group(1).replace(",", "")), 0.5 * 10 ** -len(m.group(2) or "")


def assert_value(text: str, expected: float, prefix: str = "", suffix: str = "") -> None:
    value, allowance = shown_value(text, prefix, suffix)
    assert abs(value - expected) <= allowance + 1e-9, (text, expected)


def assert_kpis_match(at: AppTest, scn: Scenario, pricing: Pricing | None = None, region="us-east-virginia") -> None:
    est = estimate(scn, CATALOG)
    shown = metrics(at)
    assert list(shown) == LABELS
    assert shown["Fits"] == "yes"
    assert_shows(shown["TTFT"], est.serving.ttft_ms, "ms")
    assert_shows(shown["TPOT"], est.serving.tpot_ms, "ms")
    assert_shows(shown["Output tokens/s"], est.serving.output_tokens_per_s, "tok/s")
    assert shown["Prefill bound"] == est.prefill.bound
    assert shown["Decode bound"] == est.decode.bound
    costs = closed_loop_costs(est, pricing or Pricing(), region, catalog=CATALOG)
    assert_value(shown["$/million output tokens"], costs.cost.usd_per_million_output_tokens, prefix="$")
    assert_value(shown["J/token"], costs.energy.joules_per_output_token, suffix=" J")


def assert_rate_kpis_match(
    at: AppTest, scn: Scenario, traffic: Traffic, slo: Slo, pricing: Pricing, region: str, method: str = "analytic"
):
    le = estimate_load(scn, traffic, slo, pricing, region, method=method, catalog=CATALOG)
    shown = metrics(at)
    pct = int(slo.pct)
    assert list(shown) == [label.replace("p90", f"p{pct}") for label in RATE_LABELS]
    assert shown["Fits"] == "yes"
    assert_shows(shown[f"TTFT p{pct}"], le.slo_ttft_ms, "ms")
    assert_shows(shown[f"TPOT p{pct}"], le.slo_tpot_ms, "ms")
    assert_shows(shown["Output tokens/s"], le.throughput.output_tokens_per_s, "tok/s")
    assert_value(shown["$/million output tokens"], le.cost.usd_per_million_output_tokens, prefix="$")
    assert_value(shown["J/token"], le.energy.joules_per_output_token, suffix=" J")
    assert (shown["Prefill bound"], shown["Decode bound"]) == (le.bound.prefill, le.bound.decode)
    assert_value(shown["Goodput"], le.goodput_rps, suffix=" req/s")
    assert_value(shown["Max rate"], le.max_rate_rps, suffix=" req/s")
    assert_value(shown["SLO attainment"], le.slo_attainment * 100, suffix="%")
    assert_value(shown["$/hour"], le.cost.usd_per_hour, prefix="$")
    return le


@pytest.fixture(scope="module")
def shared() -> AppTest:
    return run(SHARED)


def test_default_page_is_estimate_and_shows_the_landing_scenario():
    at = run()
    assert at.title[0].value == "Estimate"
    assert not at.error and not at.warning
    assert_kpis_match(at, Scenario(model="meta-llama/Llama-3.1-8B-Instruct", hardware="h100-sxm", concurrency=16))
    assert qp(at)["model"] == "meta-llama/Llama-3.1-8B-Instruct"  # the URL now holds every input


def test_shared_link_kpis_equal_core(shared):
    assert not shared.error and not shared.warning
    assert_kpis_match(shared, SHARED_SCN)
    help_texts = {m.label: m.proto.help for m in shared.metric}
    assert all(help_texts[label] for label in LABELS)


def test_url_sets_the_widgets(shared):
    at = shared
    assert at.selectbox(key="est_model").value == "meta-llama/Llama-3.1-8B-Instruct"
    assert at.selectbox(key="est_hardware").value == "h100-sxm"
    assert at.selectbox(key="est_weight_format").value == "fp8"
    assert at.selectbox(key="est_kv_format").value == "fp8"
    assert at.number_input(key="est_input_len").value == 1024
    assert at.number_input(key="est_output_len").value == 256
    assert at.number_input(key="est_concurrency").value == 16
    assert at.checkbox(key="est_conc_max").value is False


def test_widgets_write_the_url_and_numbers_follow():
    at = run(SHARED)
    at.number_input(key="est_tp").set_value(2).run()
    at.number_input(key="est_replicas").set_value(3).run()
    at.selectbox(key="est_engine").set_value("vllm").run()
    at.number_input(key="est_concurrency").set_value(48).run()
    assert not at.exception
    q = qp(at)
    assert (q["tp"], q["replicas"], q["n"], q["engine"], q["conc"]) == ("2", "3", "6", "vllm", "48")
    assert_kpis_match(at, SHARED_SCN.model_copy(update={"tp": 2, "replicas": 3, "engine": "vllm", "concurrency": 48}))
    share = at.sidebar.code[0].value
    assert "tp=2" in share and "replicas=3" in share and "conc=48" in share


def test_bad_parameters_warn_and_fall_back_without_a_traceback():
    at = run({**SHARED, "tp": "abc", "hw": "h100-sx", "conc": "-3", "zzz": "1"})
    texts = [w.value for w in at.warning]
    assert any("`tp=abc`" in t and "default" in t for t in texts)
    assert any("`hw=h100-sx`" in t and "unknown hardware" in t for t in texts)
    assert any("`conc=-3`" in t for t in texts)
    assert any("`zzz=1`" in t and "ignored" in t for t in texts)
    assert at.number_input(key="est_tp").value == 1
    assert at.selectbox(key="est_hardware").value == "h100-sxm"
    assert at.number_input(key="est_concurrency").value == 16
    assert qp(at)["tp"] == "1" and "zzz" not in qp(at)  # the URL is rewritten clean
    assert_kpis_match(at, SHARED_SCN)


def test_workload_preset_and_max_concurrency():
    at = run({**SHARED, "workload": "rag", "conc": "max"})
    rag = CATALOG.workload("rag")
    isl, osl = round(rag.input_tokens.mean), round(rag.output_tokens.mean)
    assert at.number_input(key="est_input_len").value == isl and at.number_input(key="est_input_len").disabled
    assert at.number_input(key="est_output_len").value == osl
    assert at.checkbox(key="est_conc_max").value is True
    assert qp(at)["workload"] == "rag" and "isl" not in qp(at)
    assert_kpis_match(at, SHARED_SCN.model_copy(update={"input_len": isl, "output_len": osl, "concurrency": "max"}))


def test_does_not_fit_panel_says_what_overflows():
    at = run({**SHARED, "model": "meta-llama/Llama-3.1-70B-Instruct", "w": "bf16", "kv": "auto"})
    est = estimate(SHARED_SCN.model_copy(update={"model": "meta-llama/Llama-3.1-70B-Instruct", "weight_format": "bf16",
                                                 "kv_format": None}), CATALOG)  # fmt: skip
    assert not est.fits
    shown = metrics(at)
    assert shown["Fits"] == "no" and shown["TTFT"] == "n/a" and shown["Decode bound"] == "n/a"
    assert len(at.error) == 1 and "Does not fit" in at.error[0].value and est.message in at.error[0].value
    # the memory bar is still drawn, with the part that does not fit
    assert len(at.get("vega_lite_chart")) == 1


def test_bad_layouts_are_clear_errors():
    at = run(SHARED)
    at.number_input(key="est_tp").set_value(2).run()
    at.number_input(key="est_ep").set_value(2).run()  # a dense model has no experts to split
    assert not at.exception
    assert metrics(at)["Fits"] == "no"
    assert [e.value for e in at.error] == ["**Does not fit.** ep=2 needs a mixture-of-experts model."]
    at.number_input(key="est_tp").set_value(3).run()  # ep must divide tp: not a scenario at all
    assert not at.exception
    assert len(at.error) == 1 and "ep=2 must divide tp=3" in at.error[0].value
    assert not at.metric


def _chart_data(at: AppTest, index: int) -> list[dict]:
    chart = at.get("vega_lite_chart")[index]
    rows = []
    for ds in chart.proto.datasets:
        rows += pa.ipc.open_stream(io.BytesIO(ds.data.data)).read_all().to_pylist()
    return rows


def test_charts_tables_and_downloads(shared):
    est = estimate(SHARED_SCN, CATALOG)
    charts = shared.get("vega_lite_chart")
    titles = [json.loads(c.proto.spec).get("title") for c in charts]
    assert titles[0] == "Memory per device" and titles[1].startswith("Roofline")
    assert len(charts) == 4
    parts = {r["part"]: r["gb"] for r in _chart_data(shared, 0) if "part" in r}
    assert parts["weights"] == pytest.approx(est.memory.weights_gb)
    assert parts["free"] == pytest.approx(est.memory.free_gb)
    frames = [d.value for d in shared.dataframe]
    ops = next(f for f in frames if "operator" in f.columns)
    curve = next(f for f in frames if "concurrency" in f.columns)
    assert 16 in list(curve["concurrency"]) and max(curve["concurrency"]) == est.memory.max_concurrency
    assert list(ops["operator"]) == [r.operator for r in est.operators]
    assert list(ops["time_ms"]) == pytest.approx([r.time_ms for r in est.operators], abs=5e-5)
    labels = [b.label for b in shared.get("download_button")]
    assert "Download operators CSV" in labels and "Download concurrency-curve CSV" in labels
    assert labels.count("PNG") == 4 and labels.count("SVG") == 4


def test_operator_points_toggle_adds_points_to_the_roofline():
    at = run(SHARED)
    before = {r["point"] for r in _chart_data(at, 1) if "point" in r}
    assert before == {"prefill", "decode"}
    at.toggle(key="est_show_ops").set_value(True).run()
    after = {r["point"] for r in _chart_data(at, 1) if "point" in r}
    # every operator that does arithmetic gets a point (a log axis has no place for zero FLOPs)
    ops = {f"{r.phase}: {r.operator}" for r in estimate(SHARED_SCN, CATALOG).operators if r.gflops > 0}
    assert after == before | ops and len(ops) >= 8


def test_upload_config_json_estimates_that_model():
    config = (CATALOG.model("Qwen/Qwen3-8B").config_path).read_bytes()
    at = run(SHARED)
    at.file_uploader(key="est_upload").set_value(("my-qwen.json", config, "application/json")).run()
    assert not at.exception and not at.error
    assert at.selectbox(key="est_model").value == "uploaded/my-qwen"
    arch = CATALOG.model("Qwen/Qwen3-8B").arch
    est = estimate(SHARED_SCN.model_copy(update={"model": "uploaded/my-qwen"}),
                   with_custom(CATALOG, models={"uploaded/my-qwen": arch}))  # fmt: skip
    assert_shows(metrics(at)["TPOT"], est.serving.tpot_ms, "ms")


def test_upload_of_a_broken_config_is_an_error_message():
    at = run(SHARED)
    at.file_uploader(key="est_upload").set_value(("bad.json", b"{not json", "application/json")).run()
    assert not at.exception
    assert any("bad.json is not valid JSON" in e.value for e in at.error)
    assert at.selectbox(key="est_model").value == "meta-llama/Llama-3.1-8B-Instruct"
    at.file_uploader(key="est_upload").set_value(("empty.json", b"{}", "application/json")).run()
    assert any("empty.json cannot be used" in e.value for e in at.error)


def test_a_custom_device_from_the_session_is_estimated():
    dev = CATALOG.device("h100-sxm").model_copy(update={"id": "half-h100", "name": "Half H100", "mem_bw_gbps": 1675.0})
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.session_state["custom_devices"] = {"half-h100": dev}
    at.query_params.update({**SHARED, "hw": "half-h100"})
    at.run()
    assert not at.exception and not at.warning
    assert at.selectbox(key="est_hardware").value == "half-h100"
    est = estimate(SHARED_SCN.model_copy(update={"hardware": "half-h100"}), with_custom(CATALOG, devices={dev.id: dev}))
    assert_shows(metrics(at)["TPOT"], est.serving.tpot_ms, "ms")
    assert est.serving.tpot_ms > estimate(SHARED_SCN, CATALOG).serving.tpot_ms  # half the bandwidth is slower


def test_inputs_survive_a_visit_to_another_page():
    at = run(SHARED)
    at.number_input(key="est_tp").set_value(2).run()
    at.switch_page("views/catalog.py").run()
    at.query_params.clear()  # the browser drops the query string when the page changes
    at.switch_page("views/estimate.py").run()
    assert not at.exception
    assert at.number_input(key="est_tp").value == 2
    assert qp(at)["tp"] == "2" and qp(at)["w"] == "fp8"


RATE_URL = {**SHARED, "rate": "12", "arr": "gamma", "cv": "2", "prov": "AWS", "region": "eu-sweden", "ttft": "300",
            "tpot": "20", "pct": "99"}  # fmt: skip


def test_rate_link_numbers_equal_core_and_widgets_follow_the_url():
    at = run(RATE_URL)
    assert not at.error and not at.warning
    assert at.radio(key="est_load_mode").value == "Request rate"
    assert at.number_input(key="est_rate_rps").value == 12
    assert (at.selectbox(key="est_arrival").value, at.number_input(key="est_cv").value) == ("gamma", 2.0)
    assert (at.selectbox(key="est_price").value, at.selectbox(key="est_region").value) == ("AWS", "eu-sweden")
    le = assert_rate_kpis_match(at, SHARED_SCN, Traffic(rate_rps=12, arrival="gamma", cv=2.0),
                                Slo(ttft_ms=300, tpot_ms=20, pct=99), Pricing(provider="AWS"), "eu-sweden")  # fmt: skip
    assert le.cost.provider == "AWS" and le.method.startswith("analytic")  # the page's default method
    assert {k: qp(at)[k] for k in RATE_URL} == RATE_URL  # the link is written back as given
    assert qp(at)["sim"] == "0" and at.checkbox(key="est_sim").value is False
    table = at.dataframe[0].value
    assert list(table["metric"]) == ["TTFT", "TPOT", "E2E", "QUEUE"]
    assert table["p99"][0] == pytest.approx(le.ttft_ms.p99, abs=1e-3)
    assert table["mean"][1] == pytest.approx(le.tpot_ms.mean, abs=1e-3)
    method = [c.value for c in at.caption if c.value.startswith("Method:")]
    assert len(method) == 1 and "analytic queueing model" in method[0] and "--method analytic" in method[0]


def test_sim_in_the_link_switches_to_the_simulator_and_the_checkbox_back():
    at = run({**RATE_URL, "sim": "1"})
    assert not at.error and not at.warning
    assert at.checkbox(key="est_sim").value is True
    traffic, slo = Traffic(rate_rps=12, arrival="gamma", cv=2.0), Slo(ttft_ms=300, tpot_ms=20, pct=99)
    le = assert_rate_kpis_match(at, SHARED_SCN, traffic, slo, Pricing(provider="AWS"), "eu-sweden", "simulate")
    assert le.method.startswith("iteration-level simulation")
    assert at.dataframe[0].value["p99"][0] == pytest.approx(le.ttft_ms.p99, abs=1e-3)
    method = [c.value for c in at.caption if c.value.startswith("Method:")]
    assert len(method) == 1 and "**simulation**" in method[0] and "10,000 requests" in method[0]
    at.checkbox(key="est_sim").uncheck().run()
    assert not at.exception and qp(at)["sim"] == "0"
    assert_rate_kpis_match(at, SHARED_SCN, traffic, slo, Pricing(provider="AWS"), "eu-sweden", "analytic")
    at.checkbox(key="est_sim").check().run()
    assert qp(at)["sim"] == "1"
    assert_rate_kpis_match(at, SHARED_SCN, traffic, slo, Pricing(provider="AWS"), "eu-sweden", "simulate")


def test_rate_widgets_write_the_url_and_numbers_follow():
    at = run({**SHARED, "rate": "8"})
    assert_rate_kpis_match(at, SHARED_SCN, Traffic(rate_rps=8), Slo(), Pricing(), "us-east-virginia")
    at.number_input(key="est_rate_rps").set_value(15.0).run()
    at.selectbox(key="est_price").set_value("usd").run()
    at.number_input(key="est_usd").set_value(3.5).run()
    at.selectbox(key="est_region").set_value("eu-frankfurt").run()
    assert not at.exception
    q = qp(at)
    assert (q["rate"], q["usd"], q["region"], q["arr"], q["sim"]) == ("15", "3.5", "eu-frankfurt", "poisson", "0")
    assert "prov" not in q
    assert_rate_kpis_match(at, SHARED_SCN, Traffic(rate_rps=15), Slo(), Pricing(usd_per_gpu_hour=3.5), "eu-frankfurt")
    at.checkbox(key="est_sim").check().run()
    at.radio(key="est_load_mode").set_value("Concurrency").run()
    assert "rate" not in qp(at) and qp(at)["sim"] == "1"  # the choice of method travels with the link
    assert_kpis_match(at, SHARED_SCN, Pricing(usd_per_gpu_hour=3.5), "eu-frankfurt")
    at.radio(key="est_load_mode").set_value("Request rate").run()
    assert qp(at)["rate"] == "15"  # the rate widget kept its value
    assert at.checkbox(key="est_sim").value is True  # and so did the method's checkbox
    pricing = Pricing(usd_per_gpu_hour=3.5)
    assert_rate_kpis_match(at, SHARED_SCN, Traffic(rate_rps=15), Slo(), pricing, "eu-frankfurt", "simulate")


def test_bad_rate_and_price_values_warn_and_fall_back():
    at = run({**SHARED, "rate": "-2", "arr": "weibull", "cv": "0", "prov": "nowhere", "usd": "abc", "region": "mars",
              "sim": "yes"})  # fmt: skip
    texts = " ".join(w.value for w in at.warning)
    for key in ("rate=-2", "arr=weibull", "cv=0", "prov=nowhere", "usd=abc", "region=mars", "sim=yes"):
        assert f"`{key}`" in texts, key
    assert at.radio(key="est_load_mode").value == "Concurrency"  # no usable rate: the closed loop
    q = qp(at)
    assert "rate" not in q and "prov" not in q and "usd" not in q and q["region"] == "us-east-virginia"
    assert_kpis_match(at, SHARED_SCN)


def test_overload_and_a_provider_without_this_device_are_said_clearly():
    at = run({**SHARED, "rate": "500", "prov": "Vast.ai", "hw": "l4"})  # Vast.ai lists no L4 offering
    assert not at.exception and not at.warning
    shown = metrics(at)
    assert shown["Fits"] == "yes" and shown["TTFT p90"] == "unbounded"
    assert any("Overloaded" in e.value and "500 req/s" in e.value for e in at.error)
    assert shown["$/million output tokens"] == "n/a" and shown["$/hour"] == "n/a"
    assert any("no cost figure" in m.value and "Vast.ai" in m.value for m in at.markdown)
    assert shown["J/token"] != "n/a"  # energy does not need a price


def test_trace_upload_sets_the_lengths_and_a_bad_trace_is_an_error():
    rows = "timestamp,input_tokens,output_tokens\n" + "".join(f"{i * 0.2},{300 + i % 50},{60}\n" for i in range(500))
    at = run({**SHARED, "rate": "6"})
    at.file_uploader(key="est_trace_upload").set_value(("mine.csv", rows.encode(), "text/csv")).run()
    assert not at.exception and not at.error
    assert any("mine.csv" in c.value and "500 requests" in c.value for c in at.sidebar.caption)
    from llmcap.load.trace import parse_trace

    le = estimate_load(SHARED_SCN, Traffic(rate_rps=6), trace=parse_trace(rows.encode()), method="analytic",
                       catalog=CATALOG)  # fmt: skip
    assert_shows(metrics(at)["TTFT p90"], le.slo_ttft_ms, "ms")
    assert le.scenario.output_len == 60
    bad = b"timestamp,input_tokens,output_tokens\n0,10,10\n1,-5,10\n"
    at.file_uploader(key="est_trace_upload").set_value(("bad.csv", bad, "text/csv")).run()
    assert not at.exception
    assert any("bad.csv cannot be used" in e.value and "line 3" in e.value for e in at.error)


def test_an_unsupported_combination_is_a_warning_naming_the_parameters_not_an_error():
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params.update({"engine": "trtllm", "hw": "m3-ultra-80c"})
    at.run()
    assert not at.exception and not at.error
    text = " ".join(w.value for w in at.warning)
    assert "**Engine** `trtllm`" in text and "m3-ultra-80c" in text and "mlx" in text
