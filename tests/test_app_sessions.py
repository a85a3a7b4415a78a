"""Sessions, prefix cache and KV offload on the Estimate and Plan pages under AppTest (issue 15): the numbers shown
equal core's for the same inputs, the URL keys fill the expander and round-trip, bad values are named."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from llmcap.app.state.plan_url import parse_plan_query, plan_request
from llmcap.app.state.urlstate import choices_from_catalog
from llmcap.catalog.loader import load_catalog
from llmcap.catalog.schema import SessionSpec
from llmcap.load.rate import estimate_load
from llmcap.load.sessions import parse_turns
from llmcap.plan.planner import plan
from llmcap.scenario import Pricing, Scenario, Slo, Traffic

APP = Path(__file__).resolve().parents[1] / "app" / "streamlit_app.py"
LLAMA8 = "meta-llama/Llama-3.1-8B-Instruct"
CATALOG = load_catalog()
EST = {"model": LLAMA8, "hw": "h100-sxm", "engine": "vllm", "isl": "1024", "osl": "200", "rate": "4",
       "turns": "exponential:6", "think": "30", "newtok": "150", "sysp": "500", "kvcpu": "64", "sim": "0"}  # fmt: skip


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_estimate_page_shows_core_cache_numbers_and_keeps_the_keys():
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.query_params.update(EST)
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.checkbox(key="est_wl_on").value is True
    assert at.text_input(key="est_wl_turns").value == "exponential:6"
    assert at.number_input(key="est_wl_kvcpu").value == 64
    spec = SessionSpec(turns=parse_turns("exponential:6"), think_s=30, new_tokens=150, system_prompt_tokens=500)
    le = estimate_load(
        Scenario(model=LLAMA8, hardware="h100-sxm", engine="vllm", input_len=1024, output_len=200),
        Traffic(rate_rps=4, arrival="poisson", sessions=spec, kv_offload_cpu_gb=64),
        Slo(), Pricing(), method="analytic",
    )  # fmt: skip
    shown = _metrics(at)
    assert shown["Prefix hit rate"] == f"{le.prefix_hit_rate:.1%}"
    assert shown["Prefill tokens / request"] == f"{le.prefill_tokens_per_request:,.0f}"
    assert shown["KV offload"] == "64 GB"
    assert "Sessions and prefix cache" in [h.value for h in at.subheader]
    q = {k: (v if isinstance(v, str) else v[-1]) for k, v in at.query_params.items()}
    assert {k: q.get(k) for k in ("turns", "sysp", "kvcpu")} == {"turns": "exponential:6", "sysp": "500", "kvcpu": "64"}
    assert "think" not in q and "newtok" not in q  # at their defaults (30 s, 150 tokens): not written


def test_estimate_page_names_bad_session_keys():
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.query_params.update({**EST, "turns": "weibull:3", "kvssd": "-5", "pcache": "maybe"})
    at.run()
    assert not at.exception
    warned = " ".join(w.value for w in at.warning)
    for key in ("turns", "kvssd", "pcache"):
        assert f"`{key}=" in warned, key
    assert at.checkbox(key="est_wl_on").value is False  # bad turns: independent requests


def _open_plan(params: dict[str, str]) -> AppTest:
    """The Plan page opened at a link with `params`, run without an exception."""
    at = AppTest.from_file(str(APP), default_timeout=240)
    at.query_params.update(params)
    at.switch_page("views/plan.py").run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_plan_page_hit_rates_equal_core():
    params = {"model": LLAMA8, "isl": "1024", "osl": "200", "rate": "20", "ttft": "1000", "tpot": "50",
              "hw": "h100-sxm,l40s", "turns": "exponential:6", "sysp": "500", "top": "5"}  # fmt: skip
    at = _open_plan(params)
    assert at.checkbox(key="plan_wl_on").value is True
    inputs, warnings = parse_plan_query(params, choices_from_catalog(CATALOG))
    assert not warnings
    core = plan(plan_request(inputs, CATALOG), CATALOG)
    tables = [d.value for d in at.dataframe if "prefix_hit_rate" in d.value.columns]
    assert tables, "no prefix-cache table"
    shown = tables[0]["prefix_hit_rate"].to_list()
    assert shown == [c.prefix_hit_rate for c in core.candidates]
    assert all(0 < h < 1 for h in shown)


def test_plan_page_lora_memory_equals_core():
    params = {"model": LLAMA8, "isl": "1024", "osl": "256", "rate": "20", "ttft": "1000", "tpot": "50",
              "hw": "h100-sxm,l40s", "lora": "100", "lrank": "64", "ltgt": "all", "top": "3"}  # fmt: skip
    at = _open_plan(params)
    assert at.number_input(key="plan_wl_lora").value == 100
    inputs, warnings = parse_plan_query(params, choices_from_catalog(CATALOG))
    assert not warnings and inputs.extra.lora_adapters == 100
    core = plan(plan_request(inputs, CATALOG), CATALOG)
    tables = [d.value for d in at.dataframe if "lora_memory_gb_per_device" in d.value.columns]
    assert tables and tables[0]["lora_memory_gb_per_device"].to_list() == [
        c.lora_memory_gb_per_device for c in core.candidates
    ]


def test_plan_page_per_answer_figures_equal_core():
    params = {"model": LLAMA8, "isl": "1024", "osl": "1500", "rate": "2", "ttft": "2000", "tpot": "50",
              "hw": "h100-sxm,l40s", "smp": "4", "maxout": "1000", "top": "3"}  # fmt: skip
    at = _open_plan(params)
    assert at.number_input(key="plan_wl_samples").value == 4 and at.number_input(key="plan_wl_maxout").value == 1000
    inputs, warnings = parse_plan_query(params, choices_from_catalog(CATALOG))
    assert not warnings
    core = plan(plan_request(inputs, CATALOG), CATALOG)
    assert core.request.samples == 4 and core.request.max_output_tokens == 1000
    tables = [d.value for d in at.dataframe if "usd_per_answer" in d.value.columns]
    assert tables, "no per-answer table"
    assert tables[0]["usd_per_answer"].to_list() == pytest.approx([c.usd_per_answer for c in core.candidates])
    assert tables[0]["seconds_per_answer"].to_list() == pytest.approx([c.seconds_per_answer for c in core.candidates])
    assert {k: at.query_params[k] for k in ("smp", "maxout")} == {"smp": "4", "maxout": "1000"}
    assert any("2 answers/s of 4 samples" in c.value for c in at.caption)  # rates count answers, not requests


def test_estimate_page_samples_and_token_budget_equal_core():
    params = {"model": LLAMA8, "hw": "h100-sxm", "engine": "vllm", "workload": "reasoning", "rate": "0.5",
              "sim": "0", "smp": "4", "maxout": "2000"}  # fmt: skip
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.query_params.update(params)
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.number_input(key="est_wl_samples").value == 4 and at.number_input(key="est_wl_maxout").value == 2000
    le = estimate_load(
        Scenario(model=LLAMA8, hardware="h100-sxm", engine="vllm"),
        Traffic(rate_rps=0.5, workload="reasoning", samples=4, max_output_tokens=2000), Slo(), Pricing(),
        method="analytic",
    )  # fmt: skip
    assert le.traffic.mean_output_tokens <= 2000
    shown = _metrics(at)
    assert shown["$ per answer"] == f"${le.usd_per_answer:.3g}"
    assert shown["Joules per answer"] == f"{le.joules_per_answer:,.0f}"
    assert shown["Goodput"] == f"{le.goodput_rps:,.2f} answers/s" and shown["Max rate"].endswith(" answers/s")
    q = {k: (v if isinstance(v, str) else v[-1]) for k, v in at.query_params.items()}
    assert {k: q.get(k) for k in ("smp", "maxout")} == {"smp": "4", "maxout": "2000"}
