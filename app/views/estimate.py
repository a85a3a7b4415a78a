"""Estimate page (the default, at /): one scenario's fit, latency, throughput, memory, roofline and curves.

Inputs sit in the sidebar and in the URL query string (llmcap.app.state.urlstate parses and writes it); every number
shown comes from core (estimate, curve, roofline, slo; load and operating_point for the request-rate mode,
cost and energy) through the cached calls in ui.py.
"""

from __future__ import annotations

import streamlit as st
from pydantic import ValidationError

from llmcap.app.custom_state import custom_devices, custom_models, read_devices_from_url
from llmcap.app.estimate_inputs import (
    LAST_QUERY,
    TRACE,
    inputs_from_widgets,
    load_inputs,
    pricing_of,
    push_to_widgets,
    remember_hidden,
    restore_hidden,
    write_url,
)
from llmcap.app.estimate_results import (
    curves_section,
    kpis,
    load_section,
    load_slo_panel,
    memory_section,
    method_caption,
    not_fit_panel,
    operators_section,
    roofline_section,
    slo_panel,
)
from llmcap.app.estimate_sidebar import sidebar
from llmcap.app.state.urlstate import choices_from_catalog, parse_query
from llmcap.app.ui import cached_closed_costs, cached_estimate, cached_load, catalog_or_stop, share_link, sync_from_url
from llmcap.app.workload_inputs import cache_section, read_workload, workload_expander
from llmcap.economics.operating_point import PointCosts
from llmcap.estimate.resolve import UnsupportedError
from llmcap.load.rate import LoadEstimate

# -- page ---------------------------------------------------------------------------------------------

catalog = catalog_or_stop()
read_devices_from_url()
choices = choices_from_catalog(catalog, custom_devices(), custom_models())
url_warnings = sync_from_url(LAST_QUERY, lambda q: parse_query(q, choices), push_to_widgets)
restore_hidden()
sidebar(catalog, choices)
workload_expander("est_", samples=True)
inputs = inputs_from_widgets()
remember_hidden()
share_link(write_url(inputs), "/")

st.title("Estimate")
for w in url_warnings + read_workload("est_")[1]:
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
except UnsupportedError as exc:  # the engine does not run this: a choice to change, not a failure
    st.warning(
        f"**Engine** `{inputs.engine}` with **weights** `{inputs.weight_format}` on **hardware** `{inputs.hardware}` "
        f"is not a combination a real deployment runs: {exc}.",
        icon=":material/block:",
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
    cache_section(le, "est_")
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
