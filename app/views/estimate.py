"""Estimate page (the default, at /): one scenario's fit, latency, throughput, memory, roofline and curves.

Inputs sit in the sidebar and in the URL query string (llmcap.app.state.urlstate parses and writes it); every number
shown comes from core (estimate, curve, roofline, slo; load and operating_point for the request-rate mode,
cost and energy) through the cached calls in ui.py.
"""

from __future__ import annotations

import hashlib
import math

import polars as pl
import streamlit as st
from chart_export import show_chart
from charts import latency_throughput_chart, memory_bar, memory_frame, roofline_chart
from custom_state import add_model, custom_devices, custom_models, read_devices_from_url, write_devices_to_url
from pydantic import ValidationError
from ui import (
    cached_closed_costs,
    cached_curve,
    cached_estimate,
    cached_load,
    catalog_or_stop,
    csv_download,
    share_link,
    sync_from_url,
    write_query,
)

from llmcap.app.state.urlstate import (
    MAX_CV,
    MAX_RATE_RPS,
    MAX_SLO_MS,
    MAX_USD_PER_GPU_HOUR,
    MIN_SLO_MS,
    PERCENTILES,
    TCO,
    Choices,
    PageInputs,
    choices_from_catalog,
    parse_query,
    to_query,
)
from llmcap.catalog.loader import Catalog
from llmcap.economics.operating_point import CostResult, EnergyResult, PointCosts, Pricing
from llmcap.estimate.roofline import ceilings, operator_points, phase_points
from llmcap.estimate.single import Estimate
from llmcap.estimate.slo import slo_checks
from llmcap.io.output import to_frame
from llmcap.load.rate import LoadEstimate
from llmcap.load.rate_types import LoadSpec, Slo
from llmcap.load.trace import TraceError, parse_trace
from llmcap.model.hf_limits import ConfigError, ConfigJsonError
from llmcap.model.hfconfig import parse_config_bytes
from llmcap.scenario import ENGINES

K = "est_"  # widget keys on this page
LAST_QUERY = K + "last_query"  # the query this page last wrote: a different URL means a new link was opened
UPLOAD_ERROR = K + "upload_error"
TRACE = K + "trace"  # the parsed upload: (Trace, digest, file name)
TRACE_ERROR = K + "trace_error"
MAX_CONFIG_BYTES = 5_000_000
NA = "n/a"
CONC, RATE = "Concurrency", "Request rate"
CHEAPEST, OWN = "cheapest", "usd"
DEFAULT_RATE_RPS = 5.0
DEFAULT_USD = 2.0


# -- session state <-> inputs -------------------------------------------------------------------------


def push_to_widgets(inputs: PageInputs) -> None:
    """Set every widget's state from `inputs` (before the widgets are drawn in this run)."""
    ss = st.session_state
    for name in ("model", "hardware", "tp", "pp", "ep", "replicas", "weight_format", "engine", "ttft_ms", "tpot_ms"):
        ss[K + name] = getattr(inputs, name)
    ss[K + "kv_format"] = inputs.kv_format or "auto"
    ss[K + "workload"] = inputs.workload or "fixed"
    ss[K + "input_len"], ss[K + "output_len"] = inputs.input_len, inputs.output_len
    ss[K + "conc_max"] = inputs.concurrency == "max"
    if inputs.concurrency != "max":
        ss[K + "concurrency"] = inputs.concurrency
    elif K + "concurrency" not in ss:
        ss[K + "concurrency"] = PageInputs().concurrency
    ss[K + "percentile"] = inputs.percentile
    ss[K + "load_mode"] = RATE if inputs.rate_rps is not None else CONC
    if inputs.rate_rps is not None:
        ss[K + "rate_rps"] = inputs.rate_rps
    ss.setdefault(K + "rate_rps", DEFAULT_RATE_RPS)
    ss[K + "arrival"], ss[K + "cv"], ss[K + "region"] = inputs.arrival, inputs.cv, inputs.region
    ss[K + "sim"] = inputs.simulate
    ss[K + "price"] = OWN if inputs.usd_per_gpu_hour is not None else (inputs.provider or CHEAPEST)
    if inputs.usd_per_gpu_hour is not None:
        ss[K + "usd"] = inputs.usd_per_gpu_hour
    ss.setdefault(K + "usd", DEFAULT_USD)


# Widgets drawn only in one load mode or price basis: Streamlit drops a widget's state in a run that does
# not draw it, so their values are kept under a shadow key and put back before the sidebar is drawn.
HIDDEN = ("rate_rps", "arrival", "cv", "sim", "usd", "concurrency", "conc_max")


def restore_hidden() -> None:
    ss = st.session_state
    for name in HIDDEN:
        if K + name not in ss and K + "keep_" + name in ss:
            ss[K + name] = ss[K + "keep_" + name]


def remember_hidden() -> None:
    ss = st.session_state
    for name in HIDDEN:
        if K + name in ss:
            ss[K + "keep_" + name] = ss[K + name]


def inputs_from_widgets() -> PageInputs:
    ss = st.session_state
    return PageInputs(
        model=ss[K + "model"],
        hardware=ss[K + "hardware"],
        tp=ss[K + "tp"],
        pp=ss[K + "pp"],
        ep=ss[K + "ep"],
        replicas=ss[K + "replicas"],
        weight_format=ss[K + "weight_format"],
        kv_format=None if ss[K + "kv_format"] == "auto" else ss[K + "kv_format"],
        engine=ss[K + "engine"],
        workload=None if ss[K + "workload"] == "fixed" else ss[K + "workload"],
        input_len=ss[K + "input_len"],
        output_len=ss[K + "output_len"],
        concurrency="max" if ss[K + "conc_max"] else ss[K + "concurrency"],
        rate_rps=ss[K + "rate_rps"] if ss[K + "load_mode"] == RATE else None,
        arrival=ss[K + "arrival"],
        cv=ss[K + "cv"],
        simulate=ss.get(K + "sim", False),
        provider=None if ss[K + "price"] in (CHEAPEST, OWN) else ss[K + "price"],
        usd_per_gpu_hour=ss[K + "usd"] if ss[K + "price"] == OWN else None,
        region=ss[K + "region"],
        ttft_ms=ss[K + "ttft_ms"],
        tpot_ms=ss[K + "tpot_ms"],
        percentile=ss[K + "percentile"],
    )


def write_url(inputs: PageInputs) -> dict[str, str]:
    """Put the inputs in the URL, with the session's custom devices (`dev`, custom_state) where small."""
    write_query(to_query(inputs), LAST_QUERY)
    write_devices_to_url()
    return {k: st.query_params[k] for k in st.query_params}


# -- uploaded config.json -----------------------------------------------------------------------------


def new_upload(name: str, *stale: str):
    """The file just put in uploader K + name (None when it was removed), with the session keys `stale` dropped."""
    for key in stale:
        st.session_state.pop(key, None)
    return st.session_state.get(K + name)


def uploader(label: str, ext: str, name: str, on_change, error_key: str, text: str) -> bool:
    """A sidebar upload of one `ext` file, parsed by `on_change`, and the message it left under `error_key`;
    True when there is one."""
    st.sidebar.file_uploader(label, type=[ext], key=K + name, on_change=on_change, help=text)
    if st.session_state.get(error_key):
        st.sidebar.error(st.session_state[error_key], icon=":material/error:")
        return True
    return False


def on_upload() -> None:
    """Parse an uploaded config.json into a session model and select it (runs before the rerun)."""
    up = new_upload("upload", UPLOAD_ERROR)
    if up is None:
        return
    try:  # size cap, UTF-8, hostile JSON (deep nesting, NaN, 5000-digit ints): llmcap.io.safejson via hfconfig
        arch = parse_config_bytes(up.getvalue(), MAX_CONFIG_BYTES, name=up.name)
    except ConfigJsonError as exc:
        st.session_state[UPLOAD_ERROR] = str(exc)
        return
    except (ConfigError, ValueError) as exc:
        st.session_state[UPLOAD_ERROR] = f"{up.name} cannot be used: {exc}"
        return
    stem = up.name.rsplit(".", 1)[0][:60] or "config"
    name = f"uploaded/{stem}"
    problem = add_model(name, arch)
    if problem:
        st.session_state[UPLOAD_ERROR] = problem
        return
    st.session_state[K + "model"] = name


def on_trace_upload() -> None:
    """Parse an uploaded trace CSV (llmcap.load.trace) into the session, or keep the message saying what is wrong."""
    up = new_upload("trace_upload", TRACE_ERROR, TRACE)
    if up is None:
        return
    data = up.getvalue()
    try:
        trace = parse_trace(data)
    except TraceError as exc:
        st.session_state[TRACE_ERROR] = f"{up.name} cannot be used: {exc}"
        return
    st.session_state[TRACE] = (trace, hashlib.sha256(data).hexdigest()[:16], up.name)


# -- sidebar ------------------------------------------------------------------------------------------


def sidebar(catalog: Catalog, choices: Choices) -> None:
    sb = st.sidebar
    customs = custom_models()
    model_ids = sorted({m.meta.id for m in catalog.models.values()}) + sorted(customs)
    sb.subheader("Model")
    sb.selectbox(
        "Model",
        model_ids,
        key=K + "model",
        format_func=lambda m: f"{m} (custom)" if m in customs else m,
        help="A catalog model (Hugging Face id), or one uploaded below. URL key `model`.",
    )
    uploader(
        "Or upload a config.json", "json", "upload", on_upload, UPLOAD_ERROR,
        "A Hugging Face config.json; its shapes and parameter count are read from it. "
        "An uploaded model stays in this session; it does not travel in the link.",
    )  # fmt: skip

    sb.subheader("Hardware and layout")
    devices = {**{k: d.name for k, d in catalog.hardware.items()}, **{k: d.name for k, d in custom_devices().items()}}
    sb.selectbox(
        "Hardware",
        sorted(devices),
        key=K + "hardware",
        format_func=lambda h: f"{h}: {devices.get(h, h)}",
        help="One device (accelerator, SoC or CPU socket); custom devices come from the Catalog page. URL key `hw`.",
    )
    c1, c2 = sb.columns(2)
    c1.number_input("TP", 1, 4096, step=1, key=K + "tp", help="Tensor-parallel devices per replica. URL key `tp`.")
    c2.number_input("PP", 1, 4096, step=1, key=K + "pp", help="Pipeline stages per replica. URL key `pp`.")
    c1.number_input(
        "EP", 1, 4096, step=1, key=K + "ep", help="Expert-parallel group (MoE only); must divide TP. URL key `ep`."
    )
    c2.number_input(
        "Replicas", 1, 100_000, step=1, key=K + "replicas", help="Independent copies of the model. URL key `replicas`."
    )
    ss = st.session_state
    sb.caption(f"Devices: **{ss[K + 'tp'] * ss[K + 'pp'] * ss[K + 'replicas']}** = TP × PP × replicas (URL key `n`)")

    sb.subheader("Formats and engine")
    sb.selectbox(
        "Weight format",
        list(catalog.formats),
        key=K + "weight_format",
        format_func=lambda f: f"{f}: {catalog.formats[f].name}",
        help="How weights are stored and which math the matrix products run in. URL key `w`.",
    )
    sb.selectbox(
        "KV-cache format",
        ["auto", *catalog.kv_formats],
        key=K + "kv_format",
        format_func=lambda f: "auto (the weight format's default)" if f == "auto" else f,
        help="Storage format of the KV cache. URL key `kv`.",
    )
    sb.selectbox(
        "Engine",
        list(ENGINES),
        key=K + "engine",
        help="Serving engine: its memory reservation, batch limits and fitted efficiency. URL key `engine`.",
    )

    sb.subheader("Workload and load")
    sb.selectbox(
        "Workload",
        ["fixed", *catalog.workloads],
        key=K + "workload",
        format_func=lambda w: "fixed lengths (below)" if w == "fixed" else catalog.workloads[w].name,
        help="A preset from the workloads catalog uses its mean input and output lengths. URL key `workload`.",
    )
    preset = ss[K + "workload"] != "fixed"
    if preset:
        ss[K + "input_len"], ss[K + "output_len"] = choices.lengths(ss[K + "workload"])
    c1, c2 = sb.columns(2)
    c1.number_input(
        "Input tokens", 1, 10_000_000, step=128, key=K + "input_len", disabled=preset,
        help="Prompt length per request. URL key `isl`.",
    )  # fmt: skip
    c2.number_input(
        "Output tokens", 1, 10_000_000, step=64, key=K + "output_len", disabled=preset,
        help="Generated tokens per request. URL key `osl`.",
    )  # fmt: skip
    sb.radio(
        "Load",
        [CONC, RATE],
        key=K + "load_mode",
        horizontal=True,
        help="Concurrency: a closed loop of clients (fast, mean latencies). Request rate: open-loop arrivals "
        "(percentiles, goodput, maximum rate) by the analytic queueing model, or simulated request by request. "
        "URL: `rate` present = request rate.",
    )
    if ss[K + "load_mode"] == CONC:
        sb.checkbox(
            "As many requests as fit (max)",
            key=K + "conc_max",
            help="Concurrency = as many requests as the KV cache holds. URL `conc=max`.",
        )
        sb.number_input(
            "Concurrency (requests in flight)",
            1,
            1_000_000,
            step=1,
            key=K + "concurrency",
            disabled=ss[K + "conc_max"],
            help="Closed loop: this many clients, each sending its next request when the last one ends, "
            "over all replicas. URL key `conc`.",
        )
    else:
        rate_widgets()

    sb.subheader("Cost and energy")
    providers = sorted({o.provider for o in catalog.cloud_prices.values()})
    names = {CHEAPEST: "cheapest cloud offering", OWN: "my own $/GPU-hour", TCO: "ownership (TCO)"}
    sb.selectbox(
        "Price",
        [CHEAPEST, *providers, OWN, TCO],
        key=K + "price",
        format_func=lambda p: names.get(p, f"{p} (cheapest of its offerings)"),
        help="Cloud: the cheapest current on-demand offering for this device (of one provider if chosen), "
        "billed by whole instance. Or your own $ per device-hour, or total cost of ownership (purchase price "
        "over 4 years plus electricity). URL keys `prov` (provider or `tco`) and `usd`.",
    )
    if ss[K + "price"] == OWN:
        sb.number_input(
            "$ per GPU-hour", 0.01, MAX_USD_PER_GPU_HOUR, step=0.25, key=K + "usd",
            help="What one device costs you per hour. URL key `usd`.",
        )  # fmt: skip
    sb.selectbox(
        "Grid region",
        sorted(catalog.carbon),
        key=K + "region",
        format_func=lambda r: f"{r} ({catalog.carbon[r].gco2e_per_kwh:g} gCO2e/kWh)",
        help="Carbon intensity of the electricity (catalogs/carbon.yaml). URL key `region`.",
    )

    sb.subheader("Service levels")
    c1, c2 = sb.columns(2)
    c1.number_input(
        "TTFT SLO (ms)",
        MIN_SLO_MS,
        MAX_SLO_MS,
        step=100.0,
        key=K + "ttft_ms",
        help="Time-to-first-token objective. URL key `ttft`.",
    )
    c2.number_input(
        "TPOT SLO (ms)",
        MIN_SLO_MS,
        MAX_SLO_MS,
        step=5.0,
        key=K + "tpot_ms",
        help="Time-per-output-token objective. URL key `tpot`.",
    )
    sb.selectbox(
        "Percentile",
        list(PERCENTILES),
        key=K + "percentile",
        format_func=lambda p: f"p{p}",
        help="The percentile the objectives are stated at. URL key `pct`.",
    )


def rate_widgets() -> None:
    sb, ss = st.sidebar, st.session_state
    sb.number_input(
        "Request rate (req/s)", 0.001, MAX_RATE_RPS, step=1.0, format="%g", key=K + "rate_rps",
        help="Open loop: requests arrive at this mean rate over all replicas, whatever the latency. URL key `rate`.",
    )  # fmt: skip
    c1, c2 = sb.columns(2)
    c1.selectbox(
        "Arrivals", ["poisson", "gamma"], key=K + "arrival", format_func=str.capitalize,
        help="Poisson, or bursty gamma inter-arrival gaps (BurstGPT) with the cv on the right. URL key `arr`.",
    )  # fmt: skip
    c2.number_input(
        "Burstiness (cv)", 0.01, MAX_CV, step=0.1, key=K + "cv", disabled=ss[K + "arrival"] != "gamma",
        help="Coefficient of variation of the gaps; 1 is as bursty as Poisson, BurstGPT's traffic about 1.41. "
        "URL key `cv`.",
    )  # fmt: skip
    sb.checkbox(
        "Simulate each request (slower)",
        key=K + "sim",
        help="Off: the analytic queueing model (llmcap.load.queueing; milliseconds; TTFT percentiles narrower and the "
        "maximum rate 10-15% higher than simulated). On: the iteration-level simulator of 10,000 requests, as "
        "`llmcap estimate --rate` (one to several seconds per change). URL key `sim` (0 or 1).",
    )
    shown_error = uploader(
        "Trace CSV (lengths)", "csv", "trace_upload", on_trace_upload, TRACE_ERROR,
        "Columns timestamp, input_tokens, output_tokens (or BurstGPT's or Azure's names). Request lengths "
        "are drawn from it at the rate above; it stays in this session and does not travel in the link.",
    )  # fmt: skip
    if not shown_error and ss.get(TRACE):
        trace, _, name = ss[TRACE]
        sb.caption(f"Lengths from **{name}**: {trace.rows:,} requests (the workload and lengths above are not used).")


# -- results ------------------------------------------------------------------------------------------


def ms(v: float) -> str:
    if not math.isfinite(v):
        return "unbounded"
    return f"{v:,.2f} ms" if v < 100 else f"{v:,.1f} ms" if v < 10_000 else f"{v / 1e3:,.2f} s"


def usd(v: float | None) -> str:
    if v is None or not math.isfinite(v):
        return NA
    return f"${v:,.4f}" if v < 1 else f"${v:,.3f}" if v < 100 else f"${v:,.0f}"


def load_inputs(inputs: PageInputs) -> tuple[LoadSpec, Slo, Pricing]:
    """The request-rate traffic, the SLO and the price basis of the page's inputs (what llmcap.load.rate takes)."""
    trace = st.session_state.get(TRACE)
    traffic = LoadSpec(
        rate_rps=inputs.rate_rps,
        arrival=inputs.arrival,
        cv=inputs.cv if inputs.arrival == "gamma" else None,
        workload=inputs.workload if trace is None else None,
    )
    return traffic, Slo(ttft_ms=inputs.ttft_ms, tpot_ms=inputs.tpot_ms, pct=inputs.percentile), pricing_of(inputs)


def pricing_of(inputs: PageInputs) -> Pricing:
    if inputs.usd_per_gpu_hour is not None:
        return Pricing(usd_per_gpu_hour=inputs.usd_per_gpu_hour)
    if inputs.provider == TCO:
        return Pricing(tco=True)
    return Pricing(provider=inputs.provider)


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


def kpis(est: Estimate, inputs: PageInputs, costs: PointCosts | None, le: LoadEstimate | None) -> None:
    s = est.serving
    row1, row2 = st.columns([0.7, 1, 1, 1.3]), st.columns([1.3, 1, 1, 1])
    row1[0].metric("Fits", "yes" if est.fits else "no", help="Weights, runtime and at least one request's KV "
                   "cache fit in each device's memory.", border=True)  # fmt: skip
    missing = "No estimate: the scenario does not fit." if not est.fits else "No price for this deployment."
    pct = inputs.percentile
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
        row3[0].metric("Goodput", f"{le.goodput_rps:,.2f} req/s", help=f"Highest rate at which {le.slo.pct:g}% of "
                       "requests meet both the TTFT and the TPOT objective (DistServe), by bisection over the rate "
                       f"({method_word(le)}).", border=True)  # fmt: skip
        row3[1].metric("Max rate", f"{le.max_rate_rps:,.2f} req/s", help="Highest sustainable request rate "
                       f"(the saturation throughput, {method_word(le)}); above it queues grow without bound.",
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
    for c in slo_checks(est.serving, inputs.ttft_ms, inputs.tpot_ms, inputs.percentile):
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


def roofline_section(est: Estimate, device) -> None:
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


# -- page ---------------------------------------------------------------------------------------------

catalog = catalog_or_stop()
read_devices_from_url()
choices = choices_from_catalog(catalog, custom_devices(), custom_models())
url_warnings = sync_from_url(LAST_QUERY, lambda q: parse_query(q, choices), push_to_widgets)
restore_hidden()
sidebar(catalog, choices)
inputs = inputs_from_widgets()
remember_hidden()
share_link(write_url(inputs), "/")

st.title("Estimate")
for w in url_warnings:
    st.warning(w, icon=":material/link_off:")
arch = custom_models().get(inputs.model)
device = custom_devices().get(inputs.hardware)
try:
    scn = inputs.scenario()
    scn_json = scn.model_dump_json()
    arch_json = arch.model_dump_json() if arch is not None else None
    device_json = device.model_dump_json() if device is not None else None
    est = cached_estimate(scn_json, arch_json, device_json)
except ValidationError as exc:
    st.error(
        "These inputs do not make a scenario: " + "; ".join(e["msg"] for e in exc.errors()), icon=":material/error:"
    )
    st.stop()
except (KeyError, ValueError) as exc:
    st.error(f"Cannot estimate this scenario: {exc}", icon=":material/error:")
    st.stop()

le: LoadEstimate | None = None
costs: PointCosts | None = None
notes = list(est.notes)
try:
    if inputs.rate_rps is not None:
        traffic, slo, pricing = load_inputs(inputs)
        trace_state = st.session_state.get(TRACE)
        method = "simulate" if inputs.simulate else "analytic"
        with st.spinner("Simulating the requests..." if inputs.simulate else "Solving the queueing model..."):
            le = cached_load(
                scn_json, traffic.model_dump_json(), slo.model_dump_json(), pricing.model_dump_json(), inputs.region,
                arch_json, device_json, trace=trace_state[0] if trace_state else None,
                trace_key=trace_state[1] if trace_state else None, method=method,
            )  # fmt: skip
        notes = list(le.notes) + (le.traffic.notes if le.traffic else [])
        if le.fits:
            est = le.estimate  # phases, memory and operators at the simulated mean batch
    elif est.fits:
        costs = cached_closed_costs(scn_json, pricing_of(inputs).model_dump_json(), inputs.region, arch_json,
                                    device_json)  # fmt: skip
        notes += costs.notes if costs else []
except (KeyError, ValueError) as exc:
    st.error(f"Cannot estimate this load: {exc}", icon=":material/error:")
    st.stop()

device = device or catalog.device(inputs.hardware)
load_text = (
    f"{inputs.rate_rps:g} req/s ({inputs.arrival}{f', cv {inputs.cv:g}' if inputs.arrival == 'gamma' else ''})"
    if le is not None
    else f"concurrency {scn.concurrency}"
)
shown = le.scenario if le is not None else scn
st.caption(
    f"**{est.model_id}** on {est.devices} × {est.hardware_name} (TP {scn.tp}, PP {scn.pp}, EP {scn.ep}, "
    f"{scn.replicas} replica(s)) · weights {scn.weight_format}, KV {scn.kv_format or 'auto'}, {est.math} math · "
    f"engine {scn.engine} · {shown.input_len:,} input / {shown.output_len:,} output tokens · {load_text}"
)
kpis(est, inputs, costs, le)
if le is not None and le.fits:
    method_caption(le)
if not est.fits:
    not_fit_panel(est)
if le is not None and le.fits:
    load_slo_panel(le)
    load_section(le)
else:
    slo_panel(est, inputs)
memory_section(est)
if est.fits:
    roofline_section(est, device)
    curves_section(est, inputs, scn_json, arch_json, device_json)
    operators_section(est)
if notes:
    st.subheader("Notes")
    st.markdown("\n".join(f"- {n}" for n in dict.fromkeys(notes)))
