"""The Plan page under AppTest: the table equals llmcap.plan.planner.plan for the same request, URL <-> widgets,
bad parameters warn, the Estimate link opens the same scenario, what-ifs equal llmcap.plan.whatif's."""

from __future__ import annotations

import importlib
import json
import urllib.parse
from pathlib import Path

import pyarrow as pa
import pytest
import yaml
from streamlit.testing.v1 import AppTest

from llmcap.app.state.plan_url import PlanInputs, plan_query, plan_request, whatif_changes
from llmcap.catalog.loader import load_catalog
from llmcap.load.day import preset_profile
from llmcap.plan.autoscale import day_plan, replica_bounds
from llmcap.plan.launch import export
from llmcap.plan.planner import plan
from llmcap.plan.price_options import cheapest_rows, price_options
from llmcap.plan.whatif import what_ifs

APP = Path(__file__).resolve().parents[1] / "app" / "streamlit_app.py"
LLAMA8 = "meta-llama/Llama-3.1-8B-Instruct"
CATALOG = load_catalog()
SMALL = "h100-sxm,l4,rtx-4090"  # a few devices keep each search short


def open_plan(**params: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=180)
    for k, v in params.items():
        at.query_params[k] = v
    at.switch_page("views/plan.py").run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def submit(at: AppTest) -> AppTest:
    at.button(key="FormSubmitter:plan_form-Plan").click().run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def table_with(at: AppTest, column: str):
    """The first table that has `column` (dataframes carry no key under AppTest)."""
    tables = [d.value for d in at.dataframe if column in d.value.columns]
    assert tables, f"no table with a {column} column"
    return tables[0]


def ranked(at: AppTest):
    return table_with(at, "estimate_link")


def assert_rows_equal_core(at: AppTest, inputs: PlanInputs) -> None:
    """Every shown row is the planner's candidate of the same rank for the same request."""
    expected = plan(plan_request(inputs, CATALOG), CATALOG).candidates
    shown = ranked(at)
    assert len(shown) == len(expected) > 0
    for (_, row), c in zip(shown.iterrows(), expected, strict=True):
        assert (row["hardware"], row["mode"], row["devices"], row["replicas"]) == (
            c.hardware, c.mode, c.devices, c.replicas,
        )  # fmt: skip
        assert (row["tp"], row["pp"], row["ep"], row["weight_format"], row["kv_format"], row["max_seqs"]) == (
            c.tp, c.pp, c.ep, c.weight_format, c.kv_format, c.max_seqs,
        )  # fmt: skip
        assert row["usd_per_hour"] == pytest.approx(c.usd_per_hour)
        assert row["usd_per_million_output_tokens"] == pytest.approx(c.usd_per_million_output_tokens)
        assert row["ttft_ms_p90"] == pytest.approx(c.ttft_ms_p90)
        assert row["tpot_ms_p90"] == pytest.approx(c.tpot_ms_p90)
        assert row["goodput_rps"] == pytest.approx(c.goodput_rps)


def test_widgets_set_and_submitted_give_the_planners_table_and_write_the_url():
    at = open_plan(hw=SMALL)
    assert at.title[0].value == "Plan"
    assert not at.warning and not at.error
    at.number_input(key="plan_rate_rps").set_value(25.0)
    at.number_input(key="plan_tpot_ms").set_value(60.0)
    at.selectbox(key="plan_pct").set_value(99)
    at.multiselect(key="plan_hardware").set_value(["h100-sxm", "l4"])
    at.multiselect(key="plan_weights").set_value(["fp8"])
    submit(at)
    q = at.query_params
    assert (q["rate"], q["tpot"], q["pct"], q["hw"], q["w"]) == ("25", "60", "99", "h100-sxm,l4", "fp8")
    inputs = PlanInputs(rate_rps=25, tpot_ms=60, pct=99, hardware=("h100-sxm", "l4"), weights=("fp8",))
    assert_rows_equal_core(at, inputs)
    assert ranked(at).iloc[0]["hardware"] in ("h100-sxm", "l4")


def test_a_shared_link_fills_every_widget_and_is_written_back_unchanged():
    inputs = PlanInputs(
        workload="code-completion", input_len=1, output_len=1, rate_rps=40, ttft_ms=300, tpot_ms=25, pct=95,
        e2e_ms=9000, hardware=("h100-sxm", "rtx-4090"), provider="RunPod", max_devices=32, max_usd_per_hour=500,
        weights=("bf16", "fp8"), kv=("auto", "fp8"), engines=("vllm", "sglang"), allow_disagg=True, top=5,
        whatif_bw_pct=30, whatif_price_pct=-50, whatif_traffic_x=4,
    )  # fmt: skip
    isl, osl = (round(CATALOG.workloads["code-completion"].input_tokens.mean),
                round(CATALOG.workloads["code-completion"].output_tokens.mean))  # fmt: skip
    inputs = inputs.model_copy(update={"input_len": isl, "output_len": osl})
    at = open_plan(**plan_query(inputs))
    assert not at.warning, [w.value for w in at.warning]
    ss = at.session_state
    assert ss["plan_workload"] == "code-completion" and ss["plan_rate_rps"] == 40 and ss["plan_pct"] == 95
    assert at.number_input(key="plan_e2e_ms").value == 9000
    assert at.multiselect(key="plan_hardware").value == ["h100-sxm", "rtx-4090"]
    assert at.selectbox(key="plan_provider").value == "RunPod"
    assert at.multiselect(key="plan_engines").value == ["vllm", "sglang"]
    assert at.checkbox(key="plan_allow_disagg").value and not at.checkbox(key="plan_allow_mixed").value
    assert at.number_input(key="plan_whatif_traffic_x").value == 4
    assert dict(at.query_params) == plan_query(inputs)
    assert len(ranked(at)) <= 5
    assert_rows_equal_core(at, inputs)


def test_bad_parameters_warn_by_name_and_the_page_still_plans():
    at = open_plan(rate="fast", hw=f"{SMALL},warp-9000", pct="42", w="fp7", top="-3", colour="red")
    warned = " ".join(w.value for w in at.warning)
    for key in ("rate=fast", "hw=warp-9000", "pct=42", "w=fp7", "top=-3", "colour=red"):
        assert f"`{key}`" in warned, (key, warned)
    assert not at.error
    q = at.query_params
    assert (q["rate"], q["pct"], q["w"], q["top"], q["hw"]) == ("10", "90", "bf16,fp8,int4", "10", SMALL)
    assert "colour" not in q
    assert_rows_equal_core(at, PlanInputs(hardware=tuple(SMALL.split(","))))


def test_impossible_objectives_show_the_binding_reasons_not_a_traceback():
    at = open_plan(hw="l4,h100-sxm", tpot="0.5", w="bf16")
    assert not at.error
    assert any("No deployment meets the objectives" in w.value for w in at.warning)
    assert len(ranked(at)) == 0
    rejected = table_with(at, "reason")
    assert set(rejected["hardware"]) == {"l4", "h100-sxm"}
    assert set(rejected["reason"]) == {"TPOT"}  # each device misses 0.5 ms per token even alone
    assert "What-ifs" in [h.value for h in at.subheader]


def test_the_estimate_link_opens_the_same_scenario():
    at = open_plan(hw=SMALL, rate="12", tpot="80")
    row = ranked(at).iloc[0]
    link = row["estimate_link"]
    assert link.startswith("./?")
    params = dict(urllib.parse.parse_qsl(link[3:]))
    est = AppTest.from_file(str(APP), default_timeout=120)
    for k, v in params.items():
        est.query_params[k] = v
    est.run()
    assert not est.exception and not est.warning, [w.value for w in est.warning]
    ss = est.session_state
    assert (ss["est_hardware"], ss["est_tp"], ss["est_pp"], ss["est_replicas"]) == (
        row["hardware"], row["tp"], row["pp"], row["replicas"],
    )  # fmt: skip
    assert (ss["est_weight_format"], ss["est_kv_format"], ss["est_engine"]) == (
        row["weight_format"], row["kv_format"], row["engine"],
    )  # fmt: skip
    assert (ss["est_input_len"], ss["est_output_len"], ss["est_tpot_ms"]) == (1024, 256, 80)
    assert params["rate"] == "12"


def test_pareto_charts_rejected_families_and_downloads():
    hw = f"{SMALL},a40"  # the catalog has no price for the A40: its families are rejected
    at = open_plan(hw=hw)
    charts = at.get("vega_lite_chart")
    titles = [json.loads(c.proto.spec).get("title") for c in charts]
    assert "Throughput per device vs per user" in titles and "Cost vs p90 end-to-end latency" in titles
    result = plan(plan_request(PlanInputs(hardware=tuple(hw.split(","))), CATALOG), CATALOG)
    rejected = table_with(at, "reason")
    assert list(zip(rejected["hardware"], rejected["reason"], strict=True)) == [
        (r.hardware, r.reason) for r in result.rejected
    ]
    assert ("a40", "no price") in set(zip(rejected["hardware"], rejected["reason"], strict=True))
    chart = charts[titles.index("Cost vs p90 end-to-end latency")]
    rows = max(pa.ipc.open_stream(d.data.data).read_all().num_rows for d in chart.proto.datasets)
    assert rows == sum(p.front == "cost" for p in result.pareto)
    labels = [b.label for b in at.get("download_button")]
    for name in ("plan", "plan-rejected", "plan-pareto", "plan-whatifs"):
        assert f"Download {name} CSV" in labels
    assert labels.count("PNG") == labels.count("SVG") == 3  # two fronts and the what-if bars


def test_whatifs_equal_core_whatif():
    at = open_plan(hw=SMALL, xbw="50", xrate="3")
    inputs = PlanInputs(hardware=tuple(SMALL.split(",")), whatif_bw_pct=50, whatif_traffic_x=3)
    base = plan(plan_request(inputs, CATALOG), CATALOG)
    expected = what_ifs(base, CATALOG, whatif_changes(inputs))
    shown = table_with(at, "what_if")
    assert list(shown["what_if"]) == ["as planned", *[w.name for w in expected]]
    assert shown.iloc[0]["usd_per_hour"] == pytest.approx(base.candidates[0].usd_per_hour)
    for (_, row), w in zip(shown.iloc[1:].iterrows(), expected, strict=True):
        assert row["usd_per_hour"] == pytest.approx(w.usd_per_hour)
        assert row["devices"] == w.devices and row["hardware"] == w.hardware
    assert "traffic x3" in list(shown["what_if"])


def test_inputs_survive_a_visit_to_another_page():
    at = open_plan(hw=SMALL, rate="33")
    at.switch_page("views/catalog.py").run()
    at.query_params.clear()
    at.switch_page("views/plan.py").run()
    assert not at.exception
    assert at.number_input(key="plan_rate_rps").value == 33
    assert at.query_params["rate"] == "33" and at.query_params["hw"] == SMALL


def test_a_custom_device_is_planned_and_travels_in_its_estimate_link():
    dev = CATALOG.hardware["l4"].model_copy(update={"id": "my-l4", "name": "My L4"})
    at = AppTest.from_file(str(APP), default_timeout=180)
    at.session_state["custom_devices"] = {"my-l4": dev}
    at.query_params["hw"] = "my-l4"
    at.query_params["usd"] = "0.5"  # a custom device has no catalog price
    at.switch_page("views/plan.py").run()
    assert not at.exception and not at.warning, [w.value for w in at.warning]
    row = ranked(at).iloc[0]
    assert row["hardware"] == "my-l4" and row["price_basis"] == "user $0.5/GPU-hour"
    assert row["usd_per_hour"] == pytest.approx(0.5 * row["devices"])
    params = dict(urllib.parse.parse_qsl(row["estimate_link"][3:]))
    assert params["hw"] == "my-l4" and params["usd"] == "0.5" and params["dev"]


def test_the_day_view_shows_the_day_plan_of_the_same_request_and_its_price_options():
    """Policies, ranking and price rows equal llmcap.plan.autoscale / price_options for the same inputs."""
    at = open_plan(
        model=LLAMA8, hw=SMALL, rate="12", w="fp8", day="business-hours", budget="2", pricing="on-demand,hosted,owned"
    )
    assert not at.error, [e.value for e in at.error]
    inputs = PlanInputs(
        model=LLAMA8,
        hardware=tuple(SMALL.split(",")),
        rate_rps=12,
        weights=("fp8",),
        day="business-hours",
        slo_miss_budget_pct=2.0,
        pricing=("on-demand", "hosted", "owned"),
    )
    assert dict(at.query_params) == plan_query(inputs)
    req = plan_request(inputs, CATALOG)
    prof = preset_profile("business-hours", 12)
    day = day_plan(
        plan(req.model_copy(update={"rate_rps": prof.peak_rate_rps}), CATALOG), prof, CATALOG, slo_miss_budget=0.02
    )
    ranking = table_with(at, "slo_miss_request_share")
    shown = [t.value for t in at.dataframe if "policy" in t.value.columns and "rank" in t.value.columns][0]
    assert len(shown) == len(day.rows)
    assert list(shown["usd_per_day"]) == pytest.approx([r.usd_per_day for r in day.rows])
    assert list(shown["policy"]) == [r.policy for r in day.rows]
    best = {r.policy: r for r in day.best()}
    assert set(ranking["policy"]) >= set(best)
    po = price_options(day, prof, LLAMA8, req.input_len, req.output_len, CATALOG, ("on-demand", "hosted", "owned"))
    prices = table_with(at, "cheapest_in_class")
    assert list(prices["usd_per_day"]) == pytest.approx([r.usd_per_day for r in po.rows])
    summary = table_with(at, "option")  # the cheapest of each class comes first
    assert list(summary["usd_per_day"]) == pytest.approx([r.usd_per_day for r in cheapest_rows(po)])
    assert len(set(summary["option"])) == len(summary)
    assert set(prices["option"]) <= {"on-demand", "hosted", "owned"}
    labels = [m.label for m in at.metric]
    assert "$/day autoscaled" in labels and "$/day static at peak" in labels


def test_a_bad_day_key_warns_and_the_page_plans_without_a_day():
    at = open_plan(model=LLAMA8, hw=SMALL, rate="3", day="weekend-rush", minrep="-1")
    warned = " ".join(w.value for w in at.warning)
    assert "`day=" in warned and "`minrep=" in warned
    assert not at.error and len(ranked(at)) > 0


def test_launch_downloads_the_rows_command_and_a_manifest_with_the_days_bounds():
    at = open_plan(model=LLAMA8, hw=SMALL, rate="30", w="fp8", day="consumer-chat")
    inputs = PlanInputs(model=LLAMA8, hardware=tuple(SMALL.split(",")), rate_rps=30, weights=("fp8",),
                        day="consumer-chat")  # fmt: skip
    req = plan_request(inputs, CATALOG)
    first = plan(req, CATALOG).candidates[0]
    command = next(c.value for c in at.code if c.language == "bash")
    assert command.strip() == export(first, req, CATALOG, first.engine).strip()  # st.code drops the last newline
    at.selectbox(key="plan_launch_target").set_value("k8s").run()
    manifest = next(c.value for c in at.code if c.language == "yaml")
    hpa = next(d for d in yaml.safe_load_all(manifest) if d["kind"] == "HorizontalPodAutoscaler")
    prof = preset_profile("consumer-chat", 30)
    day = day_plan(plan(req.model_copy(update={"rate_rps": prof.peak_rate_rps}), CATALOG), prof, CATALOG)
    bounds = replica_bounds(day, first)
    assert bounds is not None and (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == bounds


def test_whatifs_survive_a_run_that_stops_before_their_section(monkeypatch):
    """The what-if inputs are drawn after the plan, so a run stopped by a planner error does not draw them; the next
    run still has the value last set by the widget: no KeyError, and the link keeps xbw."""
    at = open_plan(hw=SMALL, xbw="50", rate="12")
    at.number_input(key="plan_whatif_bw_pct").set_value(60.0).run()  # set by the widget this time
    planner = importlib.import_module("llmcap.plan.planner")  # the module (llmcap.plan.plan is the function)

    def broken(*_args, **_kwargs):
        raise ValueError("planner down for the test")

    monkeypatch.setattr(planner, "plan", broken)
    at.number_input(key="plan_rate_rps").set_value(13.0)
    submit(at)
    assert any("planner down for the test" in e.value for e in at.error)
    monkeypatch.undo()
    at.run()
    assert not at.exception and not at.error
    assert at.number_input(key="plan_whatif_bw_pct").value == 60 and at.query_params["xbw"] == "60"
