"""Estimate page (the default, at /): one scenario's fit, latency, throughput, memory, roofline and curves.

Inputs sit in the sidebar and in the URL query string (core.urlstate parses and writes it); every number
shown comes from core (estimate, curve, roofline, slo) through the cached calls in ui.py.
"""

from __future__ import annotations

import json
import urllib.parse

import polars as pl
import streamlit as st
from chart_export import show_chart
from charts import latency_throughput_chart, memory_bar, memory_frame, roofline_chart
from custom_state import add_model, custom_devices, custom_models, read_devices_from_url, write_devices_to_url
from pydantic import ValidationError
from ui import cached_curve, cached_estimate, catalog_or_stop, csv_download

from core.catalog import Catalog
from core.estimate import Estimate
from core.hfconfig import ConfigError, parse_config
from core.output import to_frame
from core.roofline import ceilings, operator_points, phase_points
from core.scenario import ENGINES
from core.slo import slo_checks
from core.urlstate import (
    MAX_SLO_MS,
    MIN_SLO_MS,
    PASSTHROUGH_KEYS,
    PERCENTILES,
    Choices,
    PageInputs,
    choices_from_catalog,
    parse_query,
    to_query,
)

K = "est_"  # widget keys on this page
LAST_QUERY = K + "last_query"  # the query this page last wrote: a different URL means a new link was opened
UPLOAD_ERROR = K + "upload_error"
MAX_CONFIG_BYTES = 5_000_000
NA = "n/a"


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
    ss[K + "rate_rps"] = inputs.rate_rps


def sync_from_url(choices: Choices) -> list[str]:
    """When the URL is not the one this page last wrote (first visit, a pasted link), load it into the widgets.

    Coming back from another page (which clears the query string) restores the last inputs instead.
    Returns the URL warnings to show.
    """
    current = {k: st.query_params.get_all(k) for k in st.query_params}
    current = {k: v[-1] if len(v) == 1 else v for k, v in current.items()}
    last = st.session_state.get(LAST_QUERY)
    mine = {k: v for k, v in current.items() if k not in PASSTHROUGH_KEYS}
    if last is not None and mine == last:
        return []
    if not mine and last is not None:
        mine = last
    inputs, warnings = parse_query(mine, choices)
    push_to_widgets(inputs)
    return [str(w) for w in warnings]


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
        rate_rps=ss.get(K + "rate_rps"),
        ttft_ms=ss[K + "ttft_ms"],
        tpot_ms=ss[K + "tpot_ms"],
        percentile=ss[K + "percentile"],
    )


def write_url(inputs: PageInputs) -> dict[str, str]:
    """Put the inputs in the URL, with the session's custom devices (`dev`, custom_state) where small."""
    q = to_query(inputs)
    keep = {k: st.query_params[k] for k in PASSTHROUGH_KEYS if k in st.query_params}
    if {k: st.query_params.get(k) for k in st.query_params} != q | keep:
        st.query_params.from_dict(q | keep)
    write_devices_to_url()
    st.session_state[LAST_QUERY] = q
    return {k: st.query_params[k] for k in st.query_params}


# -- uploaded config.json -----------------------------------------------------------------------------


def on_upload() -> None:
    """Parse an uploaded config.json into a session model and select it (runs before the rerun)."""
    up = st.session_state.get(K + "upload")
    st.session_state.pop(UPLOAD_ERROR, None)
    if up is None:
        return
    try:
        if up.size > MAX_CONFIG_BYTES:
            raise ValueError(f"larger than {MAX_CONFIG_BYTES // 1_000_000} MB")
        arch = parse_config(json.loads(up.getvalue().decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        st.session_state[UPLOAD_ERROR] = f"{up.name} is not valid JSON: {exc}"
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
    sb.file_uploader(
        "Or upload a config.json",
        type=["json"],
        key=K + "upload",
        on_change=on_upload,
        help="A Hugging Face config.json; its shapes and parameter count are read from it. "
        "An uploaded model stays in this session; it does not travel in the link.",
    )
    if st.session_state.get(UPLOAD_ERROR):
        sb.error(st.session_state[UPLOAD_ERROR], icon=":material/error:")

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


def share_link(query: dict[str, str]) -> None:
    base = st.context.url or "/"
    st.sidebar.subheader("Share")
    st.sidebar.code(f"{base}?{urllib.parse.urlencode(query)}", language=None, wrap_lines=True)
    st.sidebar.caption("Every input above is in this link; the copy button is at its top right.")


# -- results ------------------------------------------------------------------------------------------


def ms(v: float) -> str:
    return f"{v:,.2f} ms" if v < 100 else f"{v:,.1f} ms" if v < 10_000 else f"{v / 1e3:,.2f} s"


def kpis(est: Estimate, inputs: PageInputs) -> None:
    s = est.serving
    row1, row2 = st.columns([0.7, 1, 1, 1.3]), st.columns([1.3, 0.7, 1, 1])
    row1[0].metric("Fits", "yes" if est.fits else "no", help="Weights, runtime and at least one request's KV "
                   "cache fit in each device's memory.", border=True)  # fmt: skip
    if s is not None:
        row1[1].metric("TTFT", ms(s.ttft_ms), help="Mean time to first token at this concurrency: waiting for a "
                       "slot, then prefill.", border=True)  # fmt: skip
        row1[2].metric("TPOT", ms(s.tpot_ms), help="Mean time per output token (decode step) at this concurrency.",
                       border=True)  # fmt: skip
        row1[3].metric("Output tokens/s", f"{s.output_tokens_per_s:,.0f} tok/s", help="Generated tokens per second "
                       f"over all {est.devices} device(s) ({s.output_tokens_per_s_per_device:,.0f} per device).",
                       border=True)  # fmt: skip
    else:
        for col, label in zip(row1[1:], ("TTFT", "TPOT", "Output tokens/s"), strict=True):
            col.metric(label, NA, help="No estimate: the scenario does not fit.", border=True)
    help_later = "Not estimated yet: cost and energy models are being added to core."
    row2[0].metric("$/million output tokens", NA, help=help_later, border=True)
    row2[1].metric("J/token", NA, help=help_later, border=True)
    row2[2].metric("Prefill bound", est.prefill.bound if est.prefill else NA, help="What limits a prefill step: "
                   "compute, memory bandwidth, interconnect or per-step overhead.", border=True)  # fmt: skip
    row2[3].metric("Decode bound", est.decode.bound if est.decode else NA, help="What limits a decode step.",
                   border=True)  # fmt: skip


def slo_panel(est: Estimate, inputs: PageInputs) -> None:
    if est.serving is None:
        return
    parts = []
    for c in slo_checks(est.serving, inputs.ttft_ms, inputs.tpot_ms, inputs.percentile):
        verdict = ":green[met]" if c.met else ":red[missed]"
        parts.append(f"**{c.metric}** {ms(c.estimate_ms)} ({c.statistic}) vs p{c.percentile} objective "
                     f"{c.objective_ms:,.6g} ms: {verdict}")  # fmt: skip
    st.markdown("SLO check: " + " · ".join(parts))
    st.caption("The closed-loop estimate gives means; percentiles arrive with the open-loop serving model.")


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
url_warnings = sync_from_url(choices)
sidebar(catalog, choices)
inputs = inputs_from_widgets()
share_link(write_url(inputs))

st.title("Estimate")
for w in url_warnings:
    st.warning(w, icon=":material/link_off:")
if inputs.rate_rps is not None:
    st.info(
        f"Request rate {inputs.rate_rps:g} req/s (URL `rate`) is kept in the link, but open-loop serving is not "
        "estimated yet: the numbers below are for the closed loop at the chosen concurrency.",
        icon=":material/info:",
    )

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

device = device or catalog.device(inputs.hardware)
st.caption(
    f"**{est.model_id}** on {est.devices} × {est.hardware_name} (TP {scn.tp}, PP {scn.pp}, EP {scn.ep}, "
    f"{scn.replicas} replica(s)) · weights {scn.weight_format}, KV {scn.kv_format or 'auto'}, {est.math} math · "
    f"engine {scn.engine} · {scn.input_len:,} input / {scn.output_len:,} output tokens · concurrency {scn.concurrency}"
)
kpis(est, inputs)
if not est.fits:
    not_fit_panel(est)
slo_panel(est, inputs)
memory_section(est)
if est.fits:
    roofline_section(est, device)
    curves_section(est, inputs, scn_json, arch_json, device_json)
    operators_section(est)
if est.notes:
    st.subheader("Notes")
    st.markdown("\n".join(f"- {n}" for n in est.notes))
