"""The Estimate page's inputs: its session keys, widget state <-> PageInputs (llmcap.app.state.urlstate), the
URL, and the traffic, SLO and price basis the library takes for them."""

from __future__ import annotations

import streamlit as st

from llmcap.app.custom_state import write_devices_to_url
from llmcap.app.state.urlstate import TCO, PageInputs, to_query
from llmcap.app.ui import write_query
from llmcap.app.workload_inputs import push_workload, read_workload
from llmcap.scenario import Pricing, Slo, Traffic

K = "est_"  # widget keys on this page
LAST_QUERY = K + "last_query"  # the query this page last wrote: a different URL means a new link was opened
UPLOAD_ERROR = K + "upload_error"
TRACE = K + "trace"  # the parsed upload: (Trace, digest, file name)
TRACE_ERROR = K + "trace_error"
MAX_CONFIG_BYTES = 5_000_000
CONC, RATE = "Concurrency", "Request rate"
CHEAPEST, OWN = "cheapest", "usd"
DEFAULT_RATE_RPS = 5.0
DEFAULT_USD = 2.0


# -- session state <-> inputs -------------------------------------------------------------------------


def push_to_widgets(inputs: PageInputs) -> None:
    """Set every widget's state from `inputs` (before the widgets are drawn in this run)."""
    ss = st.session_state
    for name in (
        "model", "hardware", "tp", "pp", "ep", "dp", "replicas", "weight_format", "engine", "ttft_ms", "tpot_ms"
    ):  # fmt: skip
        ss[K + name] = getattr(inputs, name)
    ss[K + "kv_format"] = inputs.kv_format or "auto"
    ss[K + "workload"] = inputs.workload or "fixed"
    ss[K + "input_len"], ss[K + "output_len"] = inputs.input_len, inputs.output_len
    ss[K + "conc_max"] = inputs.concurrency == "max"
    if inputs.concurrency != "max":
        ss[K + "concurrency"] = inputs.concurrency
    elif K + "concurrency" not in ss:
        ss[K + "concurrency"] = PageInputs().concurrency
    ss[K + "pct"] = inputs.pct
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
    push_workload(K, inputs.extra)


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
        dp=ss[K + "dp"],
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
        pct=ss[K + "pct"],
        extra=read_workload(K)[0],
    )


def write_url(inputs: PageInputs) -> dict[str, str]:
    """Put the inputs in the URL, with the session's custom devices (`dev`, custom_state) where small."""
    write_query(to_query(inputs), LAST_QUERY)
    write_devices_to_url()
    return {k: st.query_params[k] for k in st.query_params}


def load_inputs(inputs: PageInputs) -> tuple[Traffic, Slo, Pricing]:
    """The request-rate traffic, the SLO and the price basis of the page's inputs (what llmcap.load.rate takes)."""
    trace = st.session_state.get(TRACE)
    traffic = Traffic(
        rate_rps=inputs.rate_rps,
        arrival=inputs.arrival,
        cv=inputs.cv if inputs.arrival == "gamma" else None,
        workload=inputs.workload if trace is None else None,
        **(inputs.extra.traffic_fields() if trace is None else {}),
    )
    return traffic, Slo(ttft_ms=inputs.ttft_ms, tpot_ms=inputs.tpot_ms, pct=inputs.pct), pricing_of(inputs)


def pricing_of(inputs: PageInputs) -> Pricing:
    if inputs.usd_per_gpu_hour is not None:
        return Pricing(usd_per_gpu_hour=inputs.usd_per_gpu_hour)
    if inputs.provider == TCO:
        return Pricing(basis="owned")
    return Pricing(provider=inputs.provider)
