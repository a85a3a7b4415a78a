"""Sessions, prefix caching and KV offload on the Estimate and Plan pages (issue 15): the collapsed expander of inputs
(URL keys in llmcap.app.state.workload_url), and the results: tiles, a chart of where each prompt's tokens come
from, per-answer figures, and the planner's hit rate per deployment; every table with CSV, every chart PNG/SVG."""

from __future__ import annotations

import math

import altair as alt
import polars as pl
import streamlit as st
from pydantic import ValidationError

from llmcap.app.chart_export import show_chart
from llmcap.app.state.workload_url import (
    DEFAULT_TURNS,
    MAX_ADAPTERS,
    MAX_BUDGET,
    MAX_NEW_TOKENS,
    MAX_OFFLOAD_GB,
    MAX_RANK,
    MAX_SAMPLES,
    MAX_THINK_S,
    WorkloadInputs,
)
from llmcap.app.ui import csv_download
from llmcap.app.vega import FIT_WIDTH
from llmcap.load.rate import LoadEstimate
from llmcap.load.sessions import TURN_FAMILIES, parse_turns, turns_text
from llmcap.plan.request import Plan

W = "wl_"  # widget names, after the page's own key prefix
PCACHE_LABELS = {"auto": "engine default", "on": "on", "off": "off"}


def push_workload(k: str, w: WorkloadInputs) -> None:
    """Set the expander's widgets from `w` (before they are drawn)."""
    ss = st.session_state
    ss[k + W + "on"] = w.turns is not None
    ss[k + W + "turns"] = w.turns or DEFAULT_TURNS
    ss[k + W + "think"], ss[k + W + "newtok"], ss[k + W + "sysp"] = w.think_s, w.new_tokens, w.system_prompt_tokens
    ss[k + W + "pcache"] = w.prefix_cache
    ss[k + W + "kvcpu"], ss[k + W + "kvssd"] = w.kv_cpu_gb, w.kv_ssd_gb
    ss[k + W + "samples"] = w.samples
    ss[k + W + "maxout"] = w.max_output_tokens
    ss[k + W + "lora"], ss[k + W + "lrank"], ss[k + W + "ltgt"] = w.lora_adapters, w.lora_rank, w.lora_targets


def read_workload(k: str) -> tuple[WorkloadInputs, list[str]]:
    """The expander's inputs and a message for each value that could not be used (its default instead)."""
    ss = st.session_state
    if k + W + "on" not in ss:
        return WorkloadInputs(), []
    problems: list[str] = []
    turns = None
    if ss[k + W + "on"]:
        try:
            turns = turns_text(parse_turns(ss[k + W + "turns"]))
        except ValueError as exc:
            problems.append(f"Turns per session: {exc}; using {DEFAULT_TURNS}.")
            turns = DEFAULT_TURNS
    data = dict(
        turns=turns, think_s=ss[k + W + "think"], new_tokens=ss[k + W + "newtok"],
        system_prompt_tokens=ss[k + W + "sysp"], prefix_cache=ss[k + W + "pcache"],
        kv_cpu_gb=ss[k + W + "kvcpu"] or 0.0, kv_ssd_gb=ss[k + W + "kvssd"] or 0.0,
        samples=ss.get(k + W + "samples") or 1, max_output_tokens=ss.get(k + W + "maxout") or 0,
        lora_adapters=ss.get(k + W + "lora") or 0, lora_rank=ss.get(k + W + "lrank") or 16,
        lora_targets=ss.get(k + W + "ltgt") or "attn",
    )  # fmt: skip
    if data["prefix_cache"] == "off" and (data["kv_cpu_gb"] or data["kv_ssd_gb"]):
        problems.append("An offload tier extends the prefix cache, which is off: the tiers are not used.")
        data["kv_cpu_gb"] = data["kv_ssd_gb"] = 0.0
    try:
        return WorkloadInputs(**data), problems
    except ValidationError as exc:
        bad = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
        problems += [f"{e['loc'][0]}: {e['msg']}; using the default." for e in exc.errors()]
        return WorkloadInputs(**{k2: v for k2, v in data.items() if k2 not in bad}), problems


def workload_expander(k: str, where=None, samples: bool = True) -> None:
    """The collapsed expander of session, prefix-cache and offload inputs (in the sidebar, or in a form); with
    `samples`, the generations per prompt too (the Estimate page)."""
    box = (where or st.sidebar).expander("Sessions, prefix cache, KV offload", expanded=False)
    ss = st.session_state
    box.checkbox(
        "Multi-turn sessions", key=k + W + "on",
        help="Each turn resends the system prompt and the whole history; prefix caching decides how much of it is "
        "computed. Applies at a request rate. URL key `turns` (present = sessions).",
    )  # fmt: skip
    # in a form (the Plan page) the checkbox only counts on submit, so nothing is greyed out there
    off = where is None and not ss.get(k + W + "on", False)
    box.text_input(
        "Turns per session", key=k + W + "turns", disabled=off,
        help=f"N, or FAMILY:MEAN[:CV] with FAMILY one of {', '.join(TURN_FAMILIES)} (e.g. exponential:6). "
        "URL key `turns`.",
    )  # fmt: skip
    c1, c2 = box.columns(2)
    c1.number_input("Think time (s)", 0.001, MAX_THINK_S, step=5.0, format="%g", key=k + W + "think", disabled=off,
                    help="Mean seconds between two turns of a session (exponential). URL key `think`.")  # fmt: skip
    c2.number_input("New tokens per turn", 1, MAX_NEW_TOKENS, step=50, key=k + W + "newtok", disabled=off,
                    help="Tokens each turn adds to the history (the user's message). URL key `newtok`.")  # fmt: skip
    box.number_input("System prompt tokens", 0, MAX_NEW_TOKENS, step=100, key=k + W + "sysp", disabled=off,
                     help="Shared by every session; computed once, then always cached. URL key `sysp`.")  # fmt: skip
    box.selectbox(
        "Prefix caching", list(PCACHE_LABELS), key=k + W + "pcache", format_func=PCACHE_LABELS.get,
        help="Automatic prefix caching (vLLM APC, SGLang RadixAttention, TensorRT-LLM block reuse); the engine "
        "default is in catalogs/engines.yaml. URL key `pcache`.",
    )  # fmt: skip
    c3, c4 = box.columns(2)
    c3.number_input("CPU KV tier (GB)", 0.0, MAX_OFFLOAD_GB, step=64.0, format="%g", key=k + W + "kvcpu",
                    help="Host memory per replica for evicted session histories, reloaded over the device's host "
                    "link (PCIe, NVLink-C2C). URL key `kvcpu`.")  # fmt: skip
    c4.number_input("SSD KV tier (GB)", 0.0, MAX_OFFLOAD_GB, step=256.0, format="%g", key=k + W + "kvssd",
                    help="Local NVMe per replica behind the CPU tier. URL key `kvssd`.")  # fmt: skip
    if samples:
        c7, c8 = box.columns(2)
        c7.number_input(
            "Samples per prompt", 1, MAX_SAMPLES, step=1, key=k + W + "samples",
            help="Best-of-N / self-consistency: N generations share one prefilled prompt; the rate counts prompts "
            "(answers), the TTFT/TPOT objectives apply to each sample, and seconds, $ and joules are per answer. "
            "With sessions each turn is prefilled once and carries one answer on. URL key `smp`.",
        )  # fmt: skip
        c8.number_input(
            "Token budget per sample", 0, MAX_BUDGET, step=1000, key=k + W + "maxout",
            help="Output tokens after which the engine stops a sample (max_tokens, a thinking budget; 0: none): "
            "output lengths are cut at it (llmcap.load.budget). URL key `maxout`.",
        )  # fmt: skip
    box.number_input(
        "LoRA adapters", 0, MAX_ADAPTERS, step=1, key=k + W + "lora",
        help="Resident LoRA adapters per replica (0: none): their memory comes out of the KV cache and batched "
        "adapter kernels slow every step (llmcap.load.lora). URL key `lora`.",
    )  # fmt: skip
    c5, c6 = box.columns(2)
    c5.number_input("LoRA rank", 1, MAX_RANK, step=8, key=k + W + "lrank", help="URL key `lrank`.")
    c6.selectbox("LoRA targets", ["attn", "all"], key=k + W + "ltgt",
                 help="Attention projections, or also the MLP. URL key `ltgt`.")  # fmt: skip
    box.caption("These apply at a request rate; the closed-loop view ignores them.")


# -- results --------------------------------------------------------------------------------------------


def _num(x: float | None, fmt: str) -> str:
    return "n/a" if x is None or not math.isfinite(x) else format(x, fmt)


def answer_tiles(le: LoadEstimate) -> None:
    """Seconds, $ and joules per answer (one answer = one request)."""
    cols = st.columns(3)
    cols[0].metric("Seconds per answer", _num(le.seconds_per_answer, ".3g"), border=True,
                   help="Mean end-to-end time of one answer (one request).")  # fmt: skip
    cols[1].metric("$ per answer", "n/a" if le.usd_per_answer is None else f"${le.usd_per_answer:.3g}", border=True,
                   help="Cost per request at this operating point.")  # fmt: skip
    cols[2].metric("Joules per answer", _num(le.joules_per_answer, ",.0f"), border=True,
                   help="Energy per output token x mean output tokens.")  # fmt: skip


def cache_section(le: LoadEstimate, k: str) -> None:
    """Prefix-cache tiles, where prompt tokens come from (chart) and the figures as a table."""
    c, lora = le.prefix_cache, le.lora_memory_gb_per_device
    if c is None and le.samples == 1 and lora is None:  # per-answer figures of single answers are in the JSON only
        return
    st.subheader("Sessions and prefix cache" if c is not None else f"Per answer ({le.samples} sample(s) per prompt)")
    answer_tiles(le)
    if lora is not None:
        st.metric("LoRA adapters per device", f"{lora:,.3g} GB", border=True,
                  help="Resident adapters' memory, taken from the KV cache; their per-step cost is in the traffic "
                  "notes (llmcap.load.lora, estimated).")  # fmt: skip
    if c is None:
        st.caption(f"One answer = {le.samples} samples of one prompt, prefilled once. $ per answer at the maximum "
                   f"rate (the deployment fully used): ${_num(le.usd_per_answer_at_max_rate, '.3g')}.")  # fmt: skip
        return
    cols = st.columns(4)
    cols[0].metric("Prefix hit rate", f"{c.prefix_hit_rate:.1%}", border=True,
                   help="Share of prompt tokens served from the prefix cache (device memory or an offload tier).")
    cols[1].metric("Prefill tokens / request", f"{c.prefill_tokens_per_request:,.0f}", border=True,
                   help=f"Prompt tokens computed, of {c.prompt_tokens_per_request:,.0f} sent.")  # fmt: skip
    cols[2].metric("Resident sessions", _num(c.kv_resident_sessions, ",.0f"), border=True,
                   help="Idle session histories held in device KV memory (whole deployment).")  # fmt: skip
    cols[3].metric("KV offload", f"{c.kv_offload_gb:g} GB", border=True,
                   help=f"Offload tiers per replica: {c.kv_offload_tokens:,.0f} more tokens of history; mean reload "
                   f"{c.reload_ms_mean:,.1f} ms.")  # fmt: skip
    prompt = c.prompt_tokens_per_request
    parts = pl.DataFrame({
        "part": ["computed", "cached in device memory", "reloaded from offload tier"],
        "tokens_per_request": [c.prefill_tokens_per_request,
                               prompt * (c.prefix_hit_rate - c.offload_hit_rate), prompt * c.offload_hit_rate],
    })  # fmt: skip
    parts = parts.with_columns(pl.Series("order", [0, 1, 2]))
    domain = list(parts["part"])
    chart = (
        alt.Chart(parts)
        .mark_bar()
        .encode(
            x=alt.X("tokens_per_request:Q", stack="zero", title="prompt tokens per request (mean)"),
            color=alt.Color("part:N", scale=alt.Scale(domain=domain, range=["#d62728", "#2ca02c", "#1f77b4"]),
                            legend=alt.Legend(orient="top", title=None, direction="horizontal")),
            order=alt.Order("order:Q"),
            tooltip=["part", alt.Tooltip("tokens_per_request:Q", format=",.0f")],
        )  # fmt: skip
        .properties(height=48, title="Where each prompt's tokens come from", autosize=FIT_WIDTH)
    )
    show_chart(chart, "prefix-cache", key=k + "cache")
    st.caption(f"Method: {c.method}.")
    table = pl.DataFrame([c.model_dump() | {"seconds_per_answer": le.seconds_per_answer,
                                             "usd_per_answer": le.usd_per_answer,
                                             "joules_per_answer": le.joules_per_answer}])  # fmt: skip
    st.dataframe(table, hide_index=True)
    csv_download(table, "prefix-cache", key=k + "dl_cache")


def plan_cache_section(result: Plan, k: str) -> None:
    """The planner's prefix hit rate (sessions) and adapter memory (LoRA) per deployment: a table with CSV and, for
    sessions, a bar chart of the hit rates."""
    req = result.request
    plan_answer_section(result, k)
    rows = [
        {"rank": i, "hardware": c.hardware, "engine": c.engine, "weights": c.weight_format, "tp": c.tp,
         "replicas": c.replicas, "prefix_hit_rate": c.prefix_hit_rate,
         "prefill_tokens_per_request": c.prefill_tokens_per_request,
         "lora_memory_gb_per_device": c.lora_memory_gb_per_device}
        for i, c in enumerate(result.candidates, start=1)
    ]  # fmt: skip
    if (req.sessions is None and req.lora is None) or not rows:
        return
    if req.sessions is None:
        st.subheader("LoRA adapters per deployment")
        df = pl.DataFrame(rows).drop("prefix_hit_rate", "prefill_tokens_per_request")
        st.dataframe(df, hide_index=True)
        st.caption(f"{req.lora.adapters} adapters of rank {req.lora.rank} ({req.lora.targets}) per replica: their "
                   "memory comes out of each deployment's KV cache, their kernels slow every step (llmcap.plan.lora).")
        csv_download(df, "plan-lora", key=k + "dl_plan_lora")
        return
    st.subheader("Prefix cache per deployment")
    df = pl.DataFrame(rows).with_columns(
        pl.format("#{} {} {} {} tp{}", "rank", "hardware", "engine", "weights", "tp").alias("deployment")
    )
    chart = (
        alt.Chart(df)
        .mark_bar()
        .encode(
            x=alt.X("prefix_hit_rate:Q", title="prefix hit rate (share of prompt tokens)", axis=alt.Axis(format="%")),
            y=alt.Y("deployment:N", sort=None, title=None, axis=alt.Axis(labelLimit=320)),
            tooltip=["deployment", alt.Tooltip("prefix_hit_rate:Q", format=".1%"),
                     alt.Tooltip("prefill_tokens_per_request:Q", format=",.0f")],
        )  # fmt: skip
        .properties(height=alt.Step(26), autosize=FIT_WIDTH)
    )
    show_chart(chart, "plan-prefix-cache", key=k + "plan_cache")
    st.caption(
        f"Sessions: mean prompt {result.request.input_len:,.0f} tokens with history. Each deployment's hit rate is "
        "Che's LRU approximation with the KV memory its running requests leave (llmcap.plan.sessions)."
    )
    st.dataframe(df.drop("deployment"), hide_index=True)
    csv_download(df.drop("deployment"), "plan-prefix-cache", key=k + "dl_plan_cache")


def plan_answer_section(result: Plan, k: str) -> None:
    """With samples or a token budget: seconds, $ and joules per answer of each deployment (table with CSV)."""
    req = result.request
    if (req.samples == 1 and req.max_output_tokens is None) or not result.candidates:
        return
    st.subheader(f"Per answer ({req.samples} sample(s) per prompt)")
    df = pl.DataFrame([
        {"rank": i, "hardware": c.hardware, "engine": c.engine, "weights": c.weight_format, "tp": c.tp,
         "replicas": c.replicas, "seconds_per_answer": c.seconds_per_answer, "usd_per_answer": c.usd_per_answer,
         "joules_per_answer": c.joules_per_answer, "ttft_ms_p90": c.ttft_ms_p90, "tpot_ms_p90": c.tpot_ms_p90}
        for i, c in enumerate(result.candidates, start=1)
    ], infer_schema_length=None)  # fmt: skip
    st.dataframe(df, hide_index=True)
    csv_download(df, "plan-per-answer", key=k + "dl_plan_answer")
    st.caption("Seconds per answer: until the longest of the N samples ends; $ per answer: the deployment's "
               "$/hour over answers per hour at the rate; joules per answer: its power over answers per second. The "
               "TTFT/TPOT objectives apply to each sample (llmcap.plan.samples; the notes below say what was assumed).")
