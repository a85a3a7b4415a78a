"""The Estimate page's results: KPI tiles, SLO checks, latency at a request rate, memory, roofline, curves and
the operator table, each drawn from an Estimate or a LoadEstimate (no numbers computed here)."""

from __future__ import annotations

import math

import polars as pl
import streamlit as st

from llmcap.app.chart_export import show_chart
from llmcap.app.charts import latency_throughput_chart, memory_bar, memory_frame, roofline_chart
from llmcap.app.estimate_inputs import K
from llmcap.app.state.urlstate import PageInputs
from llmcap.app.ui import cached_curve, csv_download
from llmcap.economics.operating_point import CostResult, EnergyResult, PointCosts
from llmcap.estimate.roofline import ceilings, operator_points, phase_points
from llmcap.estimate.single import Estimate
from llmcap.estimate.slo import slo_checks
from llmcap.io.output import to_frame
from llmcap.load.rate import LoadEstimate

NA = "n/a"


# -- results ------------------------------------------------------------------------------------------


def ms(v: float) -> str:
    if not math.isfinite(v):
        return "unbounded"
    return f"{v:,.2f} ms" if v < 100 else f"{v:,.1f} ms" if v < 10_000 else f"{v / 1e3:,.2f} s"


def usd(v: float | None) -> str:
    if v is None or not math.isfinite(v):
        return NA
    return f"${v:,.4f}" if v < 1 else f"${v:,.3f}" if v < 100 else f"${v:,.0f}"


def money_energy_tiles(cols, cost: CostResult | None, energy: EnergyResult | None, missing: str) -> None:
    if cost is not None:
        help_cost = (
            f"Output tokens' share of ${cost.usd_per_hour:,.2f}/h ({cost.basis}"
            + (f": {cost.provider} {cost.instance}, {cost.devices_billed} devices billed" if cost.provider else "")
            + f"). Input tokens ${cost.usd_per_million_input_tokens:,.4g}/M; the whole bill on output tokens "
            f"${cost.usd_per_million_output_tokens_all_in:,.4g}/M; ${cost.usd_per_request:,.3g}/request; "
            f"{cost.idle_share:.0%} of what is paid for sits idle."
        )
        cols[0].metric("$/million output tokens", usd(cost.usd_per_million_output_tokens), help=help_cost, border=True)
    else:
        cols[0].metric("$/million output tokens", NA, help=missing, border=True)
    j = energy.joules_per_output_token if energy is not None else None
    if j is not None and math.isfinite(j):
        help_j = (
            f"Board energy per generated token: {energy.watts:,.0f} W over the output rate ({energy.kwh_per_day:,.1f} "
            f"kWh/day at PUE {energy.pue:g}; {energy.gco2e_per_million_output_tokens:,.1f} gCO2e per million output "
            f"tokens in {energy.region})."
        )
        cols[1].metric("J/token", f"{j:,.3f} J", help=help_j, border=True)
    else:
        cols[1].metric("J/token", NA, help="; ".join(energy.notes) if energy and energy.notes else missing,
                       border=True)  # fmt: skip


def band_text(s, le: LoadEstimate | None) -> str:
    """The 80% intervals (llmcap.estimate.bands) under the tiles; in rate mode, the closed-loop bands' ratios
    applied to the percentiles shown."""

    def span(value: float, lo: float, hi: float, ref: float, fmt) -> str:
        scale = value / ref if ref > 0 else 1.0
        return f"{fmt(lo * scale)} to {fmt(hi * scale)}"

    if le is not None and le.fits and le.slo_ttft_ms is not None and le.slo_tpot_ms is not None:
        ttft, tpot, tok = le.slo_ttft_ms, le.slo_tpot_ms, le.throughput.output_tokens_per_s
    else:
        ttft, tpot, tok = s.ttft_ms, s.tpot_ms, s.output_tokens_per_s
    tps = lambda v: f"{v:,.0f} tok/s"  # noqa: E731
    return (
        "80% of measured values for comparable scenarios fall within: TTFT "
        f"{span(ttft, s.ttft_ms_low, s.ttft_ms_high, s.ttft_ms, ms)} · TPOT "
        f"{span(tpot, s.tpot_ms_low, s.tpot_ms_high, s.tpot_ms, ms)} · output "
        f"{span(tok, s.output_tokens_per_s_low, s.output_tokens_per_s_high, s.output_tokens_per_s, tps)} "
        "(cross-validated error bands by device class, engine, load and bound; see the Accuracy page)."
    )


def kpis(est: Estimate, inputs: PageInputs, costs: PointCosts | None, le: LoadEstimate | None) -> None:
    s = est.serving
    row1, row2 = st.columns([0.7, 1, 1, 1.3]), st.columns([1.3, 1, 1, 1])
    row1[0].metric("Fits", "yes" if est.fits else "no", help="Weights, runtime and at least one request's KV "
                   "cache fit in each device's memory.", border=True)  # fmt: skip
    missing = "No estimate: the scenario does not fit." if not est.fits else "No price for this deployment."
    pct = inputs.pct
    if le is not None and le.fits:
        row1[1].metric(f"TTFT p{pct}", ms(le.slo_ttft_ms), help=f"Time to first token of the p{pct} request at "
                       f"{le.rate_rps:g} req/s ({method_word(le)}): queueing, then prefill.", border=True)  # fmt: skip
        row1[2].metric(f"TPOT p{pct}", ms(le.slo_tpot_ms), help=f"Time per output token of the p{pct} request.",
                       border=True)  # fmt: skip
        row1[3].metric("Output tokens/s", f"{le.throughput.output_tokens_per_s:,.0f} tok/s", help="Generated tokens "
                       f"per second over all {le.devices} device(s) at this rate.", border=True)  # fmt: skip
    elif s is not None and le is None:
        row1[1].metric("TTFT", ms(s.ttft_ms), help="Mean time to first token at this concurrency: waiting for a "
                       "slot, then prefill.", border=True)  # fmt: skip
        row1[2].metric("TPOT", ms(s.tpot_ms), help="Mean time per output token (decode step) at this concurrency.",
                       border=True)  # fmt: skip
        row1[3].metric("Output tokens/s", f"{s.output_tokens_per_s:,.0f} tok/s", help="Generated tokens per second "
                       f"over all {est.devices} device(s) ({s.output_tokens_per_s_per_device:,.0f} per device).",
                       border=True)  # fmt: skip
    else:
        labels = ("TTFT", "TPOT") if le is None else (f"TTFT p{pct}", f"TPOT p{pct}")
        for col, label in zip(row1[1:], (*labels, "Output tokens/s"), strict=True):
            col.metric(label, NA, help="No estimate: the scenario does not fit.", border=True)
    if s is not None:
        st.caption(band_text(s, le))
    if le is not None:
        money_energy_tiles(row2, le.cost, le.energy, missing)
    else:
        money_energy_tiles(row2, costs.cost if costs else None, costs.energy if costs else None, missing)
    row2[2].metric("Prefill bound", est.prefill.bound if est.prefill else NA, help="What limits a prefill step: "
                   "compute, memory bandwidth, interconnect or per-step overhead.", border=True)  # fmt: skip
    row2[3].metric("Decode bound", est.decode.bound if est.decode else NA, help="What limits a decode step.",
                   border=True)  # fmt: skip
    if le is not None and le.fits:
        row3 = st.columns([1.2, 1.2, 0.9, 0.8])
        unit = "req/s" if le.samples == 1 else "answers/s"  # with N samples a rate counts prompts, N requests each
        each = "" if le.samples == 1 else f" Rates count answers: each is {le.samples} requests (samples)."
        row3[0].metric("Goodput", f"{le.goodput_rps:,.2f} {unit}", help=f"Highest rate at which {le.slo.pct:g}% of "
                       "requests meet both the TTFT and the TPOT objective (DistServe), by bisection over the rate "
                       f"({method_word(le)}).{each}", border=True)  # fmt: skip
        row3[1].metric("Max rate", f"{le.max_rate_rps:,.2f} {unit}", help="Highest sustainable request rate "
                       f"(the saturation throughput, {method_word(le)}); above it queues grow without bound.{each}",
                       border=True)  # fmt: skip
        row3[2].metric("SLO attainment", f"{le.slo_attainment:.1%}", help=f"Share of requests at {le.rate_rps:g} "
                       "req/s that meet both objectives (a rejected request meets neither).", border=True)  # fmt: skip
        row3[3].metric("$/hour", usd(le.cost.usd_per_hour) if le.cost else NA, help="What the deployment costs "
                       "per hour on the chosen price basis.", border=True)  # fmt: skip


def method_word(le: LoadEstimate) -> str:
    return "analytic model" if le.method.startswith("analytic") else "simulated"


def method_caption(le: LoadEstimate) -> None:
    """Which model made the request-rate numbers, under the tiles."""
    if le.method.startswith("analytic"):
        st.caption(
            "Method: **analytic queueing model** (llmcap.load.queueing): fast, with narrower TTFT percentiles and a "
            "maximum rate 10-15% above the simulator's (docs/method.md). Tick *Simulate each request* in the "
            "sidebar for the simulator. Same numbers as `llmcap estimate --rate "
            f"{le.rate_rps:g} --method analytic`."
        )
    else:
        st.caption(
            f"Method: **simulation** of each request ({le.method}). Same numbers as `llmcap estimate --rate "
            f"{le.rate_rps:g}`."
        )


def slo_panel(est: Estimate, inputs: PageInputs) -> None:
    if est.serving is None:
        return
    parts = []
    for c in slo_checks(est.serving, inputs.ttft_ms, inputs.tpot_ms, inputs.pct):
        verdict = ":green[met]" if c.met else ":red[missed]"
        parts.append(f"**{c.metric}** {ms(c.estimate_ms)} ({c.statistic}) vs p{c.percentile} objective "
                     f"{c.objective_ms:,.6g} ms: {verdict}")  # fmt: skip
    st.markdown("SLO check: " + " · ".join(parts))
    st.caption("The closed loop gives means; choose Load = Request rate for percentiles, goodput and the max rate.")


def load_slo_panel(le: LoadEstimate) -> None:
    parts = []
    for name, value, target in (("TTFT", le.slo_ttft_ms, le.slo.ttft_ms), ("TPOT", le.slo_tpot_ms, le.slo.tpot_ms)):
        verdict = ":green[met]" if value <= target else ":red[missed]"
        parts.append(f"**{name}** p{le.slo.pct:g} {ms(value)} vs objective {target:,.6g} ms: {verdict}")
    st.markdown("SLO check: " + " · ".join(parts) + f" · {le.slo_attainment:.1%} of requests meet both")
    if not le.stable:
        st.error(
            f"**Overloaded.** {le.rate_rps:g} req/s is above the maximum sustainable rate of {le.max_rate_rps:,.2f} "
            "req/s: the queue grows without bound, so latencies are unbounded.",
            icon=":material/trending_up:",
        )


def load_section(le: LoadEstimate) -> None:
    st.subheader("Latency at this request rate")
    rows = []
    for name in ("ttft_ms", "tpot_ms", "e2e_ms", "queue_ms"):
        v = getattr(le, name)
        rows.append({"metric": name.removesuffix("_ms").upper(), **{k: round(x, 3) for k, x in v.model_dump().items()}})
    df = to_frame(rows)
    st.dataframe(df, hide_index=True)
    t = le.traffic
    over = (
        f"over {t.requests:,} simulated requests"
        if method_word(le) == "simulated"
        else f"from the analytic model, lengths from {t.requests:,} drawn requests"
    )
    st.caption(
        f"Milliseconds {over} ({t.source}; mean {t.mean_input_tokens:,.0f} input / "
        f"{t.mean_output_tokens:,.0f} output tokens). Mean decode batch {le.mean_batch:,.1f} per replica, engine busy "
        f"{le.utilization:.0%}, {le.preempted_fraction:.1%} preempted, {le.rejected_fraction:.1%} rejected. "
        f"Method: {le.method}."
    )
    csv_download(df, "latency-percentiles", key=K + "dl_latency")


def not_fit_panel(est: Estimate) -> None:
    m = est.memory
    if m.overflow_gb <= 0:  # memory would do; the layout cannot split this model
        st.error(f"**Does not fit.** {est.message}.", icon=":material/view_column:")
        return
    st.error(
        f"**Does not fit.** {est.message}.\n\n"
        f"Per device: capacity {m.capacity_gb:,.1f} GB, weights {m.weights_gb:,.2f} GB, activations "
        f"{m.activations_gb:,.2f} GB, runtime {m.overhead_gb:,.2f} GB, engine reserve {m.reserved_gb:,.2f} GB; "
        f"one request's KV cache needs {m.kv_gb_per_sequence:,.3f} GB. Try more devices (TP/PP), a smaller "
        "weight or KV format, shorter requests, or a device with more memory.",
        icon=":material/memory:",
    )


def memory_section(est: Estimate) -> None:
    m = est.memory
    st.subheader("Memory")
    parts = memory_frame(m, est.fits)
    show_chart(memory_bar(parts, m.capacity_gb), "memory", key=K + "memory")
    if est.fits:
        st.caption(
            f"KV cache {m.kv_gb_per_sequence * 1e3:,.1f} MB per request at "
            f"{est.scenario.input_len + est.scenario.output_len:,} tokens; up to {m.max_concurrency:,} requests "
            f"fit at full length; at this concurrency each could hold {m.max_context_at_concurrency:,} tokens."
        )


@st.fragment
def roofline_section(est: Estimate, device) -> None:
    """A fragment: its own toggle (each operator) reruns this section only, not the page's estimate."""
    st.subheader("Roofline")
    show_ops = st.toggle("Show each operator", key=K + "show_ops", help="Add one point per operator of both phases.")
    chart = roofline_chart(
        ceilings(device, est.math),
        device.mem_bw_gbps,
        phase_points(est),
        operator_points(est) if show_ops else None,
        device_name=f"{device.name}, {est.math} math",
    )
    show_chart(chart, "roofline", key=K + "roofline")
    st.caption(
        "Per device: FLOPs and bytes of each step from the operator table, over the modelled step time "
        "(overheads included, so points sit under the roof)."
    )


def curves_section(est: Estimate, inputs: PageInputs, scn_json: str, arch_json, device_json) -> None:
    st.subheader("Latency and throughput over concurrency")
    top = max(est.memory.max_concurrency, est.serving.concurrency)
    curve = cached_curve(scn_json, top, est.serving.concurrency, arch_json, device_json)
    if curve.is_empty():
        st.info("No concurrency level fits.")
        return
    left, right = st.columns(2)
    with left:
        show_chart(
            latency_throughput_chart(curve, "ttft_ms", inputs.ttft_ms, est.serving.concurrency),
            "ttft-curve",
            key=K + "ttft_curve",
        )
    with right:
        show_chart(
            latency_throughput_chart(curve, "tpot_ms", inputs.tpot_ms, est.serving.concurrency),
            "tpot-curve",
            key=K + "tpot_curve",
        )
    st.caption(
        f"Closed loop at concurrency 1 to {top:,} over all replicas (the red point is the chosen one); "
        "dashed lines are the objectives."
    )
    with st.expander("Curve data"):
        st.dataframe(curve, hide_index=True)
        csv_download(curve, "concurrency-curve", key=K + "dl_curve")


def operators_section(est: Estimate) -> None:
    st.subheader("Per-operator table")
    df = to_frame([r.model_dump() for r in est.operators])
    df = df.with_columns(pl.col(pl.Float64).round(4))
    st.dataframe(df, hide_index=True, column_config={"operator": st.column_config.TextColumn(pinned=True)})
    st.caption(
        "One row per operator type per step and device: prefill of one request, decode at the running batch. "
        "`layers` = how many times it runs; times are per step (ms), data in MB."
    )
    csv_download(df, "operators", key=K + "dl_operators")
