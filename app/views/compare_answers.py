"""Compare page, per answer: seconds, $ and joules per answer of two or more (model, hardware, samples N) candidates
serving one workload at one rate (llmcap.load.answers: "a small model sampled N times or a large model once").
The candidates are a table to edit; every input is in the URL (llmcap.app.state.answers_url); the results are a
table (CSV) and a chart (PNG/SVG)."""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st

from llmcap.app.chart_export import show_chart
from llmcap.app.state.answers_url import (
    MAX_RATE,
    MAX_SLO_MS,
    AnswerInputs,
    answer_query,
    parse_answer_keys,
)
from llmcap.app.ui import csv_download
from llmcap.app.vega import FIT_WIDTH
from llmcap.catalog.loader import Catalog
from llmcap.load.answers import MAX_CANDIDATES, AnswerCandidate, answer_table
from llmcap.load.budget import MAX_BUDGET_TOKENS
from llmcap.scenario import Slo

K = "ans_"
PANELS = {"seconds_per_answer": "seconds per answer", "usd_per_answer": "$ per answer at this rate",
          "usd_per_answer_at_max_rate": "$ per answer, replicas fully used",
          "joules_per_answer": "joules per answer"}  # fmt: skip
SHOWN = ("candidate", "status", "replicas", "devices", "seconds_per_answer", "usd_per_answer", "joules_per_answer",
         "usd_per_answer_at_max_rate", "slo_attainment", "ttft_ms_p90", "tpot_ms_p90", "output_tokens_per_sample",
         "note")  # fmt: skip


@st.cache_data(max_entries=64, show_spinner="Serving each candidate at the rate ...")
def _table(cands_json: tuple[str, ...], workload: str, rate: float, ttft: float, tpot: float,
           budget: int | None) -> pl.DataFrame:  # fmt: skip
    cands = [AnswerCandidate.model_validate_json(c) for c in cands_json]
    return answer_table(cands, workload, rate, slo=Slo(ttft_ms=ttft, tpot_ms=tpot), max_output_tokens=budget)


def _from_url(catalog: Catalog) -> None:
    """The inputs from the URL the first time (warnings name the key), into the widgets' state."""
    if K + "rate" in st.session_state:
        return
    raw = {k: st.query_params.get(k) for k in st.query_params}

    def warn(key, text, reason, fallback):
        st.warning(f"URL parameter `{key}`: {str(text)[:60]!r} {reason}; using {fallback}.", icon=":material/warning:")

    a = parse_answer_keys(raw, catalog, warn)
    ss = st.session_state
    ss[K + "rows"] = [c.model_dump() for c in a.candidates]
    ss[K + "workload"], ss[K + "rate"], ss[K + "ttft"], ss[K + "tpot"] = a.workload, a.rate_rps, a.ttft_ms, a.tpot_ms
    ss[K + "budget"] = a.max_output_tokens or 0


def _editor(catalog: Catalog) -> list[AnswerCandidate]:
    """The candidates table (add or delete rows); rows that are not valid are left out with a warning."""
    base = pl.DataFrame(st.session_state[K + "rows"]).select("model", "hardware", "samples", "tp", "weight_format")
    edited = st.data_editor(
        base, key=K + "editor", num_rows="dynamic", hide_index=True, width="stretch",
        column_config={
            "model": st.column_config.SelectboxColumn("model", options=list(catalog.models), required=True),
            "hardware": st.column_config.SelectboxColumn("hardware", options=sorted(catalog.hardware), required=True),
            "samples": st.column_config.NumberColumn("samples N", min_value=1, max_value=64, step=1, default=1,
                                                     help="generations per prompt (best-of-N)"),
            "tp": st.column_config.NumberColumn("tp", min_value=1, max_value=64, step=1, default=1,
                                                help="tensor-parallel devices per replica"),
            "weight_format": st.column_config.SelectboxColumn("weights", options=list(catalog.formats), default="bf16"),
        },
    )  # fmt: skip
    out = []
    for i, row in enumerate(edited.to_dicts(), start=1):
        data = {k: v for k, v in row.items() if v is not None}
        if "model" not in data or "hardware" not in data:
            st.caption(f"Candidate {i} is incomplete: pick its model and hardware.")
            continue
        try:
            out.append(AnswerCandidate(**data))
        except ValueError as exc:
            st.warning(f"Candidate {i} left out: {str(exc).splitlines()[-1].strip()}", icon=":material/warning:")
    if len(out) > MAX_CANDIDATES:
        st.warning(f"Only the first {MAX_CANDIDATES} candidates are compared.", icon=":material/warning:")
    return out[:MAX_CANDIDATES]


def _chart(df: pl.DataFrame) -> alt.FacetChart:
    long = df.filter(pl.col("status").is_in(["ok", "misses_slo"])).unpivot(
        index=["candidate", "status"], on=list(PANELS), variable_name="metric", value_name="value"
    ).with_columns(pl.col("metric").replace_strict(PANELS))
    return (
        alt.Chart(long)
        .mark_bar()
        .encode(
            y=alt.Y("candidate:N", title=None, sort=None, axis=alt.Axis(labelLimit=300)),
            x=alt.X("value:Q", title=None, axis=alt.Axis(tickCount=4)),
            color=alt.Color("candidate:N", legend=None),
            opacity=alt.condition(alt.datum.status == "ok", alt.value(1.0), alt.value(0.45)),
            tooltip=["candidate", "metric", alt.Tooltip("value:Q", format=",.4~g"), "status"],
        )
        .properties(width=260, height=alt.Step(26))
        .facet(facet=alt.Facet("metric:N", title=None, sort=list(PANELS.values())), columns=2)
        .resolve_scale(x="independent")
        .properties(title="Per answer (each candidate at its fewest replicas that meet the objectives)")
        .configure(autosize=FIT_WIDTH)
    )


def answers_section(catalog: Catalog) -> None:
    """The per-answer view: inputs, table with CSV, chart with PNG/SVG; its keys written to the URL."""
    st.subheader("Per answer: a small model sampled N times, or a large model once")
    st.caption(
        "Seconds, $ and joules per answer of each candidate serving one workload at one rate (answers per second); "
        "N samples share one prefilled prompt. The TTFT/TPOT objectives apply to each sample. Kinetics (Sadhukhan "
        "et al. 2025, arXiv 2506.05333) argues that attention over long generations, not parameter count, "
        "dominates the cost of test-time scaling; this view measures it with the analytic serving model."
    )
    _from_url(catalog)
    ss = st.session_state
    c1, c2, c3, c4, c5 = st.columns(5)
    c1.selectbox("Workload", list(catalog.workloads), key=K + "workload",
                 help="workload preset (lengths and arrivals). URL key `answl`.")  # fmt: skip
    c2.number_input("Answers/s", 1e-6, MAX_RATE, format="%g", key=K + "rate",
                    help="prompts per second; each gets N samples. URL key `ansrate`.")  # fmt: skip
    c3.number_input("TTFT objective (ms)", 0.1, MAX_SLO_MS, format="%g", key=K + "ttft",
                    help="per sample, at p90. URL key `ansttft`.")  # fmt: skip
    c4.number_input("TPOT objective (ms)", 0.1, MAX_SLO_MS, format="%g", key=K + "tpot",
                    help="per sample, at p90. URL key `anstpot`.")  # fmt: skip
    c5.number_input("Token budget", 0, MAX_BUDGET_TOKENS, step=1000, key=K + "budget",
                    help="output tokens per sample before the engine stops it (0: none). URL key `ansmax`.")
    cands = _editor(catalog)
    if not cands:
        st.info("No valid candidate: add a row to the table.")
        return
    a = AnswerInputs(candidates=tuple(cands), workload=ss[K + "workload"], rate_rps=ss[K + "rate"],
                     ttft_ms=ss[K + "ttft"], tpot_ms=ss[K + "tpot"], max_output_tokens=ss[K + "budget"] or None)
    df = _table(tuple(c.model_dump_json() for c in a.candidates), a.workload, a.rate_rps, a.ttft_ms, a.tpot_ms,
                a.max_output_tokens)  # fmt: skip
    shown = df.select(SHOWN)
    st.dataframe(shown, hide_index=True, key=K + "table", column_config={
        "candidate": st.column_config.TextColumn("candidate", pinned=True, width="large"),
        "usd_per_answer": st.column_config.NumberColumn("usd_per_answer", format="%.5f"),
        "usd_per_answer_at_max_rate": st.column_config.NumberColumn("usd_per_answer_at_max_rate", format="%.5f"),
        **{c: st.column_config.NumberColumn(c, format="%.1f") for c in ("seconds_per_answer", "ttft_ms_p90",
                                                                         "tpot_ms_p90")},
        "joules_per_answer": st.column_config.NumberColumn("joules_per_answer", format="%.0f"),
    })  # fmt: skip
    csv_download(df, "per-answer", key=K + "csv")
    if df.filter(pl.col("status").is_in(["ok", "misses_slo"])).height:
        show_chart(_chart(df), "per-answer", key=K + "chart")
    st.caption(
        "Seconds per answer: until the longest of the N samples ends (mean TTFT + its length x mean TPOT). "
        "$ per answer: the "
        "deployment's $/hour over answers per hour at this rate; at max rate: with the replicas fully used. Joules: "
        "energy per output token x output tokens x N. Faded bars miss the objectives even at the largest count tried."
    )
    for key in ("ans", "answl", "ansrate", "ansttft", "anstpot", "ansmax"):
        st.query_params.pop(key, None)
    st.query_params.update(answer_query(a))
