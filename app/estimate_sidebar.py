"""The Estimate page's sidebar: model (or an uploaded config.json), hardware and layout, formats and engine,
workload and load (request rate, arrivals, trace upload), cost and energy, service levels."""

from __future__ import annotations

import hashlib

import streamlit as st

from llmcap.app.custom_state import add_model, custom_devices, custom_models
from llmcap.app.estimate_inputs import CHEAPEST, CONC, MAX_CONFIG_BYTES, OWN, RATE, TRACE, TRACE_ERROR, UPLOAD_ERROR, K
from llmcap.app.state.urlstate import (
    MAX_CV,
    MAX_RATE_RPS,
    MAX_SLO_MS,
    MAX_USD_PER_GPU_HOUR,
    MIN_SLO_MS,
    PERCENTILES,
    TCO,
    Choices,
)
from llmcap.catalog.loader import Catalog
from llmcap.load.trace import TraceError, parse_trace
from llmcap.model.hf_limits import ConfigError, ConfigJsonError
from llmcap.model.hfconfig import parse_config_bytes
from llmcap.scenario import ENGINES

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
        "DP (attention)", 1, 4096, step=1, key=K + "dp",
        help="Attention data-parallel groups inside TP (MLA models keep 1/DP of the KV cache per device); must "
        "divide TP. URL key `dp`.",
    )  # fmt: skip
    c1.number_input(
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
        key=K + "pct",
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
