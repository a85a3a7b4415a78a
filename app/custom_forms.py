"""The Catalog page's "your own entries": a custom-device form, config.json and trace uploads, the list of what
this session holds, and the scenario file. Everything is validated by core (Device, parse_config, parse_trace).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import streamlit as st
from pydantic import ValidationError

from llmcap.app.custom_state import (
    DEVICES_KEY,
    MODELS_KEY,
    add_devices,
    add_model,
    custom_devices,
    custom_models,
    scenario_file_text,
    scenario_file_uploader,
)
from llmcap.app.ui import get_catalog
from llmcap.catalog.schema import MATH_TYPES, Device
from llmcap.io.scenario_io import check_model_name
from llmcap.load.trace import TraceError, parse_trace
from llmcap.load.traffic import replay_trace, summarize
from llmcap.model.hf_limits import ConfigError, ConfigJsonError
from llmcap.model.hfconfig import parse_config_bytes
from llmcap.scenario import validation_text

TRACES_KEY = "custom_traces"  # name -> llmcap.load.trace.Trace
KINDS = ("datacenter_gpu", "consumer_gpu", "accelerator", "apple_soc", "edge", "cpu")
BLANK = "(blank)"
F = "cdev_"  # widget keys of the device form
PEAK_HELP = "dense peak (no sparsity): TFLOP/s for float types, TOP/s for int types; 0 = no native support"


def _prefill() -> None:
    """Copy a catalog device into the form (on_change of 'Start from')."""
    ss = st.session_state
    base = ss.get(F + "base")
    d = get_catalog().hardware.get(base) if base and base != BLANK else None
    ss[F + "id"] = f"{d.id}-custom" if d else ""
    ss[F + "name"] = f"{d.name} (custom)" if d else ""
    ss[F + "vendor"] = d.vendor if d else ""
    ss[F + "kind"] = d.kind if d else "datacenter_gpu"
    ss[F + "memory_gb"] = float(d.memory_gb) if d else 0.0
    ss[F + "mem_bw_gbps"] = float(d.mem_bw_gbps) if d else 0.0
    for m in MATH_TYPES:
        ss[F + m] = float(d.peak_tflops.get(m, 0.0)) if d else 0.0
    link = d.scaleup if d else None
    ss[F + "link_gbps"] = float(link.gbps_per_direction or 0.0) if link else 0.0
    ss[F + "link_domain"] = int(link.domain_devices or 1) if link else 1
    ss[F + "tdp_w"] = float(d.tdp_w or 0.0) if d else 0.0
    ss[F + "source"] = f"based on {d.id} ({d.source})"[:300] if d else ""


def device_from_form(values: dict) -> Device:
    """A Device from the form's values (0 = not given); ValueError with one line per bad field."""
    peaks = {m: values[m] for m in MATH_TYPES if values.get(m)}
    doc = {
        "id": values["id"].strip(),
        "name": values["name"].strip() or values["id"].strip(),
        "vendor": values["vendor"].strip() or "custom",
        "kind": values["kind"],
        "memory_gb": values["memory_gb"],
        "mem_bw_gbps": values["mem_bw_gbps"],
        "peak_tflops": peaks,
        "tdp_w": values["tdp_w"] or None,
        "source": values["source"].strip(),
    }
    if values.get("link_gbps"):
        doc["scaleup"] = {
            "name": "custom link",
            "gbps_per_direction": values["link_gbps"],
            "domain_devices": values["link_domain"],
        }
    try:
        return Device.model_validate(doc)
    except ValidationError as exc:
        text = validation_text(exc).replace("peak_tflops: Value error, ", "peak throughput: ")
        if any(e["loc"] == ("id",) for e in exc.errors()):
            text += " (ids are lower-case letters, digits, '.' and '-', e.g. my-gpu-96gb)"
        raise ValueError(text) from None


def _device_form() -> None:
    st.selectbox(
        "Start from",
        [BLANK, *sorted(get_catalog().hardware)],
        key=F + "base",
        on_change=_prefill,
        help="copy a catalog device's figures into the form, then change what differs",
    )
    if F + "kind" not in st.session_state:
        _prefill()
    with st.form("custom_device", border=True):
        c1, c2 = st.columns(2)
        c1.text_input("Id", key=F + "id", placeholder="my-gpu-96gb", help="lower-case letters, digits, '.' and '-'")
        c2.text_input("Name", key=F + "name", placeholder="My GPU 96GB")
        c1.text_input("Vendor", key=F + "vendor")
        c2.selectbox("Kind", KINDS, key=F + "kind")
        c1.number_input("Memory (GB)", 0.0, 100_000.0, key=F + "memory_gb", help="per device")
        c2.number_input("Memory bandwidth (GB/s)", 0.0, 1_000_000.0, key=F + "mem_bw_gbps")
        cols = st.columns(3)
        for i, m in enumerate(MATH_TYPES):
            unit = "TOP/s" if m.startswith("int") else "TFLOP/s"
            cols[i % 3].number_input(f"{m} ({unit})", 0.0, 1_000_000.0, key=F + m, help=PEAK_HELP)
        c1, c2, c3 = st.columns(3)
        c1.number_input("Scale-up link (GB/s per direction)", 0.0, 100_000.0, key=F + "link_gbps", help="0 = none")
        c2.number_input("Devices per scale-up domain", 1, 100_000, key=F + "link_domain")
        c3.number_input("Power (W)", 0.0, 100_000.0, key=F + "tdp_w", help="TDP; 0 = unknown")
        st.text_input("Source", key=F + "source", help="where the figures come from (a datasheet, a measurement)")
        submitted = st.form_submit_button("Add device", icon=":material/add:", type="primary")
    if submitted:
        values = {k.removeprefix(F): v for k, v in st.session_state.items() if k.startswith(F)}
        try:
            dev = device_from_form(values)
        except ValueError as exc:
            st.error(f"Device not added: {exc}", icon=":material/error:")
            return
        problems = add_devices([dev])
        if problems:
            st.error(problems[0], icon=":material/error:")
        else:
            st.success(f"Added device `{dev.id}`: Estimate and Compare list it under Hardware.")


def _config_upload() -> None:
    with st.form("custom_model", border=True, clear_on_submit=False):
        up = st.file_uploader("A model's config.json", type=["json"], key="cmodel_file", help="from Hugging Face")
        name = st.text_input(
            "Name", key="cmodel_name", placeholder="my-org/my-model", help="how the model is listed; default: its file"
        )
        submitted = st.form_submit_button("Add model", icon=":material/add:", type="primary")
    if not submitted:
        return
    if up is None:
        st.error("Choose a config.json file first.", icon=":material/error:")
        return
    name = name.strip() or Path(up.name).stem
    try:
        arch = parse_config_bytes(up.getvalue(), name=up.name)
        check_model_name(name)
    except ConfigJsonError as exc:
        st.error(str(exc), icon=":material/error:")
        return
    except (ConfigError, ValueError) as exc:
        st.error(f"{up.name} cannot be used: {exc}", icon=":material/error:")
        return
    problem = add_model(name, arch)
    if problem:
        st.error(problem, icon=":material/error:")
        return
    active = f", {arch.params_active / 1e9:.2f} B active" if arch.moe else ""
    st.success(
        f"Added model `{name}`: {arch.params_total / 1e9:.2f} B parameters{active}, {arch.num_layers} layers, "
        f"context {arch.max_context:,}."
    )


def _trace_upload() -> None:
    up = st.file_uploader(
        "A request trace (CSV)",
        type=["csv"],
        key="ctrace_file",
        help="columns timestamp, input_tokens, output_tokens (BurstGPT and Azure LLM trace columns also work)",
    )
    if up is None or st.session_state.get("ctrace_done") == up.file_id:
        return
    st.session_state["ctrace_done"] = up.file_id
    try:
        trace = parse_trace(up.getvalue())
    except TraceError as exc:
        st.error(f"{up.name} cannot be used: {exc}", icon=":material/error:")
        return
    st.session_state.setdefault(TRACES_KEY, {})[up.name] = trace
    st.success(f"Added trace `{up.name}` ({trace.format} columns, {trace.rows:,} requests).")


def _held() -> None:
    """What this session holds, with a remove button for each."""
    devs, models = custom_devices(), custom_models()
    traces = st.session_state.get(TRACES_KEY, {})
    if not (devs or models or traces):
        st.caption("No custom entries yet.")
        return
    rows = [
        {"kind": "device", "id": d.id, "what": f"{d.name}: {d.memory_gb:g} GB, {d.mem_bw_gbps:g} GB/s"}
        for d in devs.values()
    ]
    rows += [
        {"kind": "model", "id": n, "what": f"{a.params_total / 1e9:.2f} B parameters, {a.num_layers} layers"}
        for n, a in models.items()
    ]
    for n, t in traces.items():
        s = summarize(replay_trace(t))
        rows.append(
            {
                "kind": "trace",
                "id": n,
                "what": f"{s.n:,} requests over {s.span_s:,.0f} s ({s.rate_rps:.2f}/s); input mean "
                f"{s.input_tokens.mean:,.0f} tokens, output mean {s.output_tokens.mean:,.0f}",
            }
        )
    st.dataframe(pl.DataFrame(rows), hide_index=True, key="custom_table")
    store = {"device": (DEVICES_KEY, devs), "model": (MODELS_KEY, models), "trace": (TRACES_KEY, traces)}
    labels = [f"{r['kind']} {r['id']}" for r in rows]
    with st.container(horizontal=True, vertical_alignment="bottom"):
        gone = st.selectbox("Remove", labels, index=None, key="custom_remove", placeholder="choose an entry")
        if st.button("Remove", key="custom_remove_btn", disabled=gone is None):
            kind, name = gone.split(" ", 1)
            store[kind][1].pop(name, None)
            st.rerun()


def custom_entries_section() -> None:
    st.header("Your own entries")
    st.caption(
        "Custom devices and models live in this browser session: the Estimate and Compare pages list them. "
        "Devices also travel in the page URL (`dev=`); save a scenario file to keep or share models too."
    )
    c1, c2 = st.columns([3, 2], gap="large")
    with c1:
        st.subheader("A custom device")
        _device_form()
    with c2:
        st.subheader("A model (config.json)")
        _config_upload()
        st.subheader("A request trace")
        _trace_upload()
    st.subheader("Held in this session")
    _held()
    c1, c2 = st.columns(2)
    with c1:
        st.download_button(
            "Save scenario file",
            scenario_file_text([]),
            file_name="llmcap-custom.json",
            mime="application/json",
            key="custom_save",
            on_click="ignore",
            icon=":material/save:",
            help="custom devices and models as JSON (the Compare page also saves its scenarios in it)",
        )
    with c2:
        doc = scenario_file_uploader("custom_file")
        if doc is not None and doc.scenarios:
            st.session_state["cmp_pending"] = list(doc.scenarios)
            st.caption(f"Its {len(doc.scenarios)} scenario(s) open on the Compare page.")
