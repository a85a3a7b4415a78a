"""Plan page (/plan): the cheapest deployments that serve a request rate within the objectives.

Inputs sit in a sidebar form and in the URL (llmcap.app.state.plan_url parses and writes it); the search is
llmcap.plan.planner.plan, cached on the request JSON, with its progress callback driving a progress bar. Shown: the
ranked table (each row links to the Estimate page with the same scenario), the rejected families with the
reason that binds, the two Pareto fronts, and the what-ifs (llmcap.app.views.plan_whatifs: inputs of their own in a
fragment, so a what-if change re-plans that section only).
"""

from __future__ import annotations

import json
import urllib.parse

import polars as pl
import streamlit as st
from pydantic import ValidationError

from llmcap.app.chart_export import show_cached_chart
from llmcap.app.custom_state import custom_devices, custom_models, extended_catalog, read_devices_from_url
from llmcap.app.plan_charts import front_chart
from llmcap.app.state.plan_url import (
    AUTO_KV,
    MAX_PLAN_DEVICES,
    MAX_TOP,
    MAX_USD_PER_HOUR,
    PlanInputs,
    estimate_query,
    parse_plan_query,
    plan_defaults,
    plan_query,
    plan_request,
)
from llmcap.app.state.urlstate import (
    MAX_RATE_RPS,
    MAX_SLO_MS,
    MAX_USD_PER_GPU_HOUR,
    MIN_SLO_MS,
    PERCENTILES,
    Choices,
    choices_from_catalog,
)
from llmcap.app.ui import catalog_or_stop, csv_download, share_link, sync_from_url, write_query
from llmcap.app.views import plan_day, plan_launch, plan_whatifs
from llmcap.app.workload_inputs import plan_cache_section, push_workload, read_workload, workload_expander
from llmcap.catalog.loader import Catalog, normalize_id
from llmcap.io.output import to_frame
from llmcap.io.scenario_io import MAX_URL_DEVICES_CHARS, encode_devices
from llmcap.plan.planner import plan
from llmcap.plan.request import AUTO_ENGINES, Plan, PlanRequest
from llmcap.scenario import ENGINES, MAX_TOKENS, PRICE_BASES

BASIS_LABELS = {"cloud": "Rent (cloud on-demand)", "owned": "Own (TCO)", "both": "Both, labelled"}
K = "plan_"  # widget keys on this page
LAST_QUERY = K + "last_query"
FORM = K + "form"
ANY = "any"
LIST_FIELDS = ("weights", "kv", "engines")
# The ranked table: candidate field -> column header (units in every header that has one).
COLUMNS = {
    "rank": "#",
    "mode": "mode",
    "hardware": "hardware",
    "devices": "devices",
    "tp": "TP",
    "pp": "PP",
    "ep": "EP",
    "replicas": "replicas",
    "weight_format": "weights",
    "kv_format": "KV cache",
    "engine": "engine",
    "max_seqs": "max seqs / replica",
    "ttft_ms_p50": "TTFT p50 (ms)",
    "ttft_ms_p90": "TTFT p90 (ms)",
    "tpot_ms_p50": "TPOT p50 (ms)",
    "tpot_ms_p90": "TPOT p90 (ms)",
    "e2e_ms_p90": "e2e p90 (ms)",
    "slo_attainment": "SLO attainment (share)",
    "slo_margin_pct": "SLO margin (%)",
    "slo_margin_pessimistic_pct": "SLO margin, pessimistic (%)",
    "goodput_rps": "goodput (req/s)",
    "max_rate_rps": "max rate (req/s)",
    "utilization": "utilization (share)",
    "usd_per_hour": "$/hour",
    "usd_per_million_output_tokens": "$/M output tokens",
    "joules_per_output_token": "J/output token",
    "output_tokens_per_s_per_device": "output tok/s per device",
    "price_basis": "price basis",
    "detail": "detail",
    "estimate_link": "open in Estimate",
}
FORMATS = {
    "ttft_ms_p50": "%.1f", "ttft_ms_p90": "%.1f", "tpot_ms_p50": "%.2f", "tpot_ms_p90": "%.2f", "e2e_ms_p90": "%,.0f",
    "slo_attainment": "%.3f", "goodput_rps": "%.2f", "max_rate_rps": "%.2f", "utilization": "%.2f",
    "usd_per_hour": "$%.2f", "usd_per_million_output_tokens": "$%.3f", "joules_per_output_token": "%.3f",
    "output_tokens_per_s_per_device": "%,.0f",
}  # fmt: skip
REASON_HELP = {
    "does not fit": "no layout within the device limit holds the weights and one request's KV cache",
    "TTFT": "misses the TTFT objective even with one request in flight",
    "TPOT": "misses the TPOT objective even with one request in flight",
    "devices": "needs more devices than the limit",
    "budget": "costs more than the $/hour limit",
    "e2e": "misses the end-to-end objective",
    "throughput": "cannot reach the minimum throughput",
    "no price": "no cloud offering or purchase price; give a $/GPU-hour",
    "invalid": "the format, engine or device cannot be combined",
}


# -- session state <-> inputs -------------------------------------------------------------------------


def push_to_widgets(inputs: PlanInputs) -> None:
    """Set every widget's state from `inputs` (before the widgets are drawn in this run)."""
    ss = st.session_state
    for name in (
        "model", "input_len", "output_len", "rate_rps", "ttft_ms", "tpot_ms", "pct", "e2e_ms",
        "usd_per_gpu_hour", "max_devices", "max_usd_per_hour", "robust", "allow_disagg", "allow_mixed", "top",
        *plan_whatifs.FIELDS,
    ):  # fmt: skip
        ss[K + name] = getattr(inputs, name)
    ss[K + "price_basis"] = inputs.price_basis
    push_workload(K, inputs.extra)
    ss[K + "workload"] = inputs.workload or "fixed"
    ss[K + "hardware"] = list(inputs.hardware or ())
    ss[K + "provider"] = inputs.provider or ANY
    for name in LIST_FIELDS:
        ss[K + name] = list(getattr(inputs, name))
    plan_day.push(inputs)


def inputs_from_widgets(choices: Choices) -> tuple[PlanInputs, list[str]]:
    """The inputs; an empty list or an impossible value falls back to its default with a message."""
    ss = st.session_state
    base = plan_defaults(choices)
    data = {
        name: ss[K + name]
        for name in (
            "model", "input_len", "output_len", "rate_rps", "ttft_ms", "tpot_ms", "pct", "e2e_ms",
            "usd_per_gpu_hour", "max_devices", "max_usd_per_hour", "robust", "allow_disagg", "allow_mixed", "top",
            *plan_whatifs.FIELDS,
        )
    }  # fmt: skip
    data["workload"] = None if ss[K + "workload"] == "fixed" else ss[K + "workload"]
    data["hardware"] = tuple(ss[K + "hardware"]) or None
    data["provider"] = None if ss[K + "provider"] == ANY else ss[K + "provider"]
    data["price_basis"] = ss[K + "price_basis"]
    data |= plan_day.read()
    data["extra"], problems = read_workload(K)
    for name in LIST_FIELDS:
        data[name] = tuple(ss[K + name]) or getattr(base, name)
        if not ss[K + name]:
            problems.append(f"No {name.rstrip('s')} chosen: using {', '.join(getattr(base, name))}.")
    for name in ("rate_rps", "ttft_ms", "tpot_ms", *plan_whatifs.NUMBERS):
        if data[name] is None:  # a cleared number box
            data[name] = getattr(base, name)
            problems.append(f"{name} was empty: using {getattr(base, name):g}.")
    try:
        return PlanInputs.model_validate(data), problems
    except ValidationError as exc:
        bad = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
        problems += [f"{e['loc'][0] if e['loc'] else 'input'}: {e['msg']}; using the default." for e in exc.errors()]
        return PlanInputs.model_validate({k: v for k, v in data.items() if k not in bad}), problems


# -- sidebar --------------------------------------------------------------------------------------------


def number_boxes(*boxes: tuple[str, float, float, float, str, str]) -> tuple:
    """Number inputs two to a row, each (label, min, max, step, field, help), keyed K + field; returns the columns
    so that more widgets can follow in them."""
    cols = st.columns(2)
    for i, (label, low, high, step, name, text) in enumerate(boxes):
        cols[i % 2].number_input(label, low, high, step=step, format="%g", key=K + name, help=text)
    return cols


def sidebar(catalog: Catalog, choices: Choices) -> None:
    customs = custom_models()
    devices = {**{k: d.name for k, d in catalog.hardware.items()}, **{k: d.name for k, d in custom_devices().items()}}
    with st.sidebar.form(FORM, border=False):
        st.subheader("What to serve")
        st.selectbox(
            "Model",
            sorted({m.meta.id for m in catalog.models.values()}) + sorted(customs),
            key=K + "model",
            format_func=lambda m: f"{m} (custom)" if m in customs else m,
            help="A catalog model, or a custom one from the Catalog or Estimate page. URL key `model`.",
        )
        st.selectbox(
            "Workload",
            ["fixed", *catalog.workloads],
            key=K + "workload",
            format_func=lambda w: "fixed lengths (below)" if w == "fixed" else catalog.workloads[w].name,
            help="A preset brings its mean lengths, their spread and its arrival burstiness and replaces the "
            "lengths below; fixed lengths have no spread and Poisson arrivals. URL key `workload`.",
        )
        c1, c2 = st.columns(2)
        c1.number_input(
            "Input tokens", 1, MAX_TOKENS, step=128, key=K + "input_len", help="Prompt tokens. URL key `isl`."
        )
        c2.number_input(
            "Output tokens", 1, MAX_TOKENS, step=64, key=K + "output_len", help="Generated tokens. URL key `osl`."
        )
        st.number_input(
            "Request rate (req/s)", 0.001, MAX_RATE_RPS, step=1.0, format="%g", key=K + "rate_rps",
            help="Mean arrival rate of requests over the whole service (open loop). URL key `rate`.",
        )  # fmt: skip

        st.subheader("Objectives")
        c1, c2 = number_boxes(
            ("TTFT (ms)", MIN_SLO_MS, MAX_SLO_MS, 100.0, "ttft_ms", "Time-to-first-token objective. URL key `ttft`."),
            ("TPOT (ms)", MIN_SLO_MS, MAX_SLO_MS, 5.0, "tpot_ms", "Time-per-output-token objective. URL key `tpot`."),
        )
        c1.selectbox(
            "Percentile", list(PERCENTILES), key=K + "pct", format_func=lambda p: f"p{p}",
            help="Share of requests that must meet both objectives (goodput as in DistServe). URL key `pct`.",
        )  # fmt: skip
        c2.number_input(
            "e2e (ms)", MIN_SLO_MS, MAX_SLO_MS, value=None, step=1000.0, format="%g", key=K + "e2e_ms",
            placeholder="none", help="Optional end-to-end objective at p90. URL key `e2e`.",
        )  # fmt: skip

        st.subheader("Constraints")
        st.multiselect(
            "Hardware",
            sorted(devices),
            key=K + "hardware",
            placeholder="all devices",
            format_func=lambda h: f"{h}: {devices.get(h, h)}",
            help="Devices to consider; empty = every device. URL key `hw` (`all` or ids, comma-separated).",
        )
        st.radio(
            "Price basis", list(PRICE_BASES), key=K + "price_basis", horizontal=True,
            format_func=lambda b: BASIS_LABELS[b],
            help="Rent (cloud on-demand prices) or own (total cost of ownership: purchase over its life, power, "
            "hosting); both ranks them together, each row saying which. URL key `basis`.",
        )  # fmt: skip
        providers = sorted(choices.providers.values())
        st.selectbox(
            "Cloud provider", [ANY, *providers], key=K + "provider",
            format_func=lambda p: "any (cheapest on-demand offering)" if p == ANY else p,
            help="Price devices at this provider's on-demand offerings only. URL key `prov`.",
        )  # fmt: skip
        c1, c2 = st.columns(2)
        c1.number_input(
            "Max devices", 1, MAX_PLAN_DEVICES, step=8, key=K + "max_devices",
            help="Most devices in the whole deployment. URL key `maxdev`.",
        )  # fmt: skip
        c2.number_input(
            "Max $/hour", 0.01, MAX_USD_PER_HOUR, value=None, step=10.0, format="%g", key=K + "max_usd_per_hour",
            placeholder="no limit", help="Budget for the whole deployment. URL key `maxusd`.",
        )  # fmt: skip
        st.number_input(
            "Own price ($/GPU-hour)", 0.01, MAX_USD_PER_GPU_HOUR, value=None, step=0.5, format="%g",
            key=K + "usd_per_gpu_hour", placeholder="catalog prices",
            help="Price every device at this $/device-hour instead of the catalog's. URL key `usd`.",
        )  # fmt: skip
        st.multiselect(
            "Weight formats", list(catalog.formats), key=K + "weights",
            help="Weight formats to try. URL key `w` (comma-separated).",
        )  # fmt: skip
        st.multiselect(
            "KV-cache formats", [AUTO_KV, *catalog.kv_formats], key=K + "kv",
            format_func=lambda f: "auto (the weight format's default)" if f == AUTO_KV else f,
            help="KV-cache formats to try. URL key `kv` (comma-separated).",
        )  # fmt: skip
        st.multiselect(
            "Engines", [AUTO_ENGINES, *ENGINES], key=K + "engines",
            format_func=lambda e: "auto (each device's engines, from the support matrix)" if e == AUTO_ENGINES else e,
            help="Serving engines to try; auto = the engines that run on each device. URL key `engine`.",
        )  # fmt: skip
        st.checkbox(
            "Robust to estimation error", key=K + "robust",
            help="Require the objectives at the slow end of each deployment's 80% error band (from cross-validated "
            "residuals of comparable measured scenarios), not at the point estimate. URL key `robust`.",
        )  # fmt: skip
        st.checkbox(
            "Disaggregated prefill/decode", key=K + "allow_disagg",
            help="Also try separate prefill and decode pools (Splitwise, DistServe). URL key `disagg`.",
        )  # fmt: skip
        st.checkbox(
            "Mixed device types", key=K + "allow_mixed",
            help="Also try a mix of device types for one service (Mélange). URL key `mixed`.",
        )  # fmt: skip
        st.number_input("Rows to show", 1, MAX_TOP, key=K + "top", help="How many deployments to rank. URL key `top`.")

        plan_day.sidebar_widgets()
        workload_expander(K, st)
        st.form_submit_button("Plan", type="primary", icon=":material/search:", width="stretch")


# -- the search -------------------------------------------------------------------------------------------


@st.cache_data(show_spinner=False, max_entries=32)
def cached_plan(request_json: str, custom_key: str, _catalog: Catalog) -> Plan:
    """llmcap.plan.planner.plan for a request (its JSON and the session's custom entries are the cache key).

    The progress bar is drawn here so that Streamlit replays it on a cache hit (inside a container the
    caller empties) instead of failing to find an element drawn outside the cached call.
    """
    bar = st.progress(0.0, text="Planning: starting")

    def progress(fraction: float, message: str) -> None:
        bar.progress(min(max(float(fraction), 0.0), 1.0), text=f"Planning: {message}")

    return plan(PlanRequest.model_validate_json(request_json), _catalog, progress)


def custom_key() -> str:
    devs = encode_devices(list(custom_devices().values())) if custom_devices() else ""
    models = {n: json.loads(a.model_dump_json()) for n, a in custom_models().items()}
    return json.dumps([devs, models], sort_keys=True)


# -- results --------------------------------------------------------------------------------------------


def link_for(query: dict[str, str] | None, hardware: str) -> str | None:
    """A relative link to the Estimate page (served at the app's root), with the custom device if any."""
    if query is None:
        return None
    dev = custom_devices().get(hardware)
    if dev is not None:
        text = encode_devices([dev])
        if len(text) <= MAX_URL_DEVICES_CHARS:
            query = query | {"dev": text}
    return "./?" + urllib.parse.urlencode(query)


def candidates_frame(result: Plan, inputs: PlanInputs, hardware_ids: dict[str, str]) -> pl.DataFrame:
    """The ranked table: one row per candidate with the columns of COLUMNS (the CSV has the same)."""
    rows = []
    for i, c in enumerate(result.candidates, start=1):
        row = {"rank": i, **c.model_dump()}
        row["estimate_link"] = link_for(estimate_query(c, inputs, result.request, hardware_ids), c.hardware)
        rows.append(row)
    if not rows:
        return pl.DataFrame({k: [] for k in COLUMNS})
    return to_frame(rows).select(list(COLUMNS))


def recommendation(result: Plan) -> None:
    basis = result.request.pricing.basis
    if result.request.pricing.usd_per_gpu_hour is None and basis == "owned":
        st.warning("Priced as **owned hardware** (total cost of ownership), not rented: no cloud prices are used.")
    elif result.request.pricing.usd_per_gpu_hour is None and basis == "both":
        st.warning(
            "**Owning and renting are ranked together**: rows priced by total cost of ownership say `owned (TCO)` in "
            "the price basis column; the rest are cloud on-demand prices."
        )
    best = result.candidates[0]
    one_type = " " not in best.hardware  # a mix or a cross-device pair names several devices
    what = f"{best.devices} × {best.hardware}" if one_type else f"{best.devices} devices: {best.hardware}"
    st.markdown(f"#### Cheapest: {what}")
    st.caption(
        f"{best.mode} · TP {best.tp}, PP {best.pp}, EP {best.ep} · {best.replicas} replica(s) · weights "
        f"{best.weight_format}, KV {best.kv_format} · {best.engine}, up to {best.max_seqs} requests per replica · "
        f"priced as {best.price_basis}"
    )
    cols = st.columns(4)
    cols[0].metric("$/hour", f"${best.usd_per_hour:,.2f}", border=True, help="Whole instances, idle capacity counted.")
    per_m = "Dollars per million output tokens: $/hour over the tokens served per hour at the rate."
    cols[1].metric("$/M tokens", f"${best.usd_per_million_output_tokens:,.3f}", border=True, help=per_m)
    cols[2].metric("TTFT p90", f"{best.ttft_ms_p90:,.0f} ms", border=True, help="At the operating point.")
    cols[3].metric("TPOT p90", f"{best.tpot_ms_p90:,.1f} ms", border=True, help="At the operating point.")


def ranked_section(frame: pl.DataFrame, samples: int) -> None:
    st.subheader("Ranked deployments")
    headers = dict(COLUMNS)
    if samples > 1:  # rates count answers (prompts) of `samples` requests each (llmcap.plan.samples)
        headers |= {"goodput_rps": "goodput (answers/s)", "max_rate_rps": "max rate (answers/s)"}
    config = {k: st.column_config.Column(v) for k, v in headers.items()}
    config |= {k: st.column_config.NumberColumn(headers[k], format=f) for k, f in FORMATS.items()}
    config["rank"] = st.column_config.NumberColumn("#", pinned=True, width="small")
    config["hardware"] = st.column_config.TextColumn("hardware", pinned=True, width="medium")
    config["estimate_link"] = st.column_config.LinkColumn(
        "open in Estimate", display_text="open ↗", help="The same scenario on the Estimate page (new tab)"
    )
    shown = ["rank", "estimate_link", *[c for c in COLUMNS if c not in ("rank", "estimate_link")]]
    st.dataframe(frame, hide_index=True, column_config=config, column_order=shown, key=K + "table", placeholder="–")
    st.caption(
        "Cheapest first; every row meets the objectives at the request rate. Percentiles at the operating point "
        "(the rate split over the replicas); goodput = the highest rate at which the percentile meets both "
        "objectives. Rows that are a mix or two different pools have no single Estimate scenario (no link)."
    )
    csv_download(frame, "plan", key=K + "dl_plan")


def rejected_section(result: Plan) -> None:
    st.subheader("Rejected families")
    if not result.rejected:
        st.caption("Every device × format × engine family has at least one deployment that qualifies.")
        return
    frame = to_frame([r.model_dump() for r in result.rejected])
    counts = frame.group_by("reason").len().sort("len", descending=True)
    st.markdown(
        " · ".join(f"**{r}**: {n}" for r, n in counts.iter_rows())
        + f" (of {len(result.rejected)} families with no qualifying deployment)"
    )
    with st.expander("Each family and the reason that binds", expanded=False):
        st.dataframe(frame, hide_index=True, key=K + "rejected")
        st.caption(" · ".join(f"**{r}**: {REASON_HELP.get(r, '')}" for r in counts["reason"]))
    csv_download(frame, "plan-rejected", key=K + "dl_rejected")


def plan_key_text(result: Plan) -> str:
    return result.request.model_dump_json() + custom_key()  # what a plan, so its charts, depend on


def pareto_section(result: Plan) -> None:
    st.subheader("Pareto fronts")
    if not result.pareto:
        st.caption("No configuration fits, so there is no front to draw.")
        return
    points = to_frame([p.model_dump() for p in result.pareto]).with_columns(
        pl.format("tp={} pp={} ep={}", "tp", "pp", "ep").alias("layout")
    )
    fronts = [f for f in ("throughput", "cost") if f in set(points["front"])]
    cols = st.columns(len(fronts))
    for col, front in zip(cols, fronts, strict=True):
        with col:
            show_cached_chart(lambda front=front: front_chart(points, front, result.request), plan_key_text(result),
                              f"pareto-{front}", key=K + f"pareto_{front}")  # fmt: skip
    st.caption(
        "Left: every fitting configuration at every load, the best output tokens/s per device for each speed "
        "per user (1000 / TPOT ms). Right: the request at its rate, $/million output tokens against p90 "
        "end-to-end latency, whether or not the objectives are met. Both axes logarithmic."
    )
    csv_download(points, "plan-pareto", key=K + "dl_pareto")


# -- page -----------------------------------------------------------------------------------------------

catalog = catalog_or_stop()
read_devices_from_url()
choices = choices_from_catalog(catalog, custom_devices(), custom_models())
url_warnings = sync_from_url(LAST_QUERY, lambda q: parse_plan_query(q, choices), push_to_widgets)
sidebar(catalog, choices)
inputs, input_problems = inputs_from_widgets(choices)
share = share_link(write_query(plan_query(inputs), LAST_QUERY), "/plan")

st.title("Plan")
for w in url_warnings:
    st.warning(w, icon=":material/link_off:")
for p in input_problems:
    st.warning(p, icon=":material/warning:")

full_catalog = extended_catalog()
try:
    req = plan_request(inputs, full_catalog)
except (ValidationError, KeyError, ValueError) as exc:
    st.error(f"These inputs do not make a planner request: {exc}", icon=":material/error:")
    st.stop()

hw_text = "all devices" if inputs.hardware is None else f"{len(inputs.hardware)} device type(s)"
lengths = f"{req.input_len:,.0f} input / {req.output_len:,.0f} output tokens"
if inputs.workload:
    lengths = f"workload **{inputs.workload}** (mean {lengths}, cv {req.input_cv:g}/{req.output_cv:g})"
st.caption(
    f"**{req.model}** at **{req.rate_rps:g} {'req/s' if req.samples == 1 else f'answers/s of {req.samples} samples'}"
    f"** · {lengths} · p{inputs.pct} TTFT ≤ {req.slo.ttft_ms:g} ms "
    f"and TPOT ≤ {req.slo.tpot_ms:g} ms · {hw_text}, up to {req.max_devices} devices · weights "
    f"{', '.join(req.weights)} · engines {', '.join(req.engines)}"
)

plan_key = (req.model_dump_json(), custom_key())
slot = st.empty()
try:
    with slot.container():
        result = cached_plan(*plan_key, full_catalog)
except (KeyError, ValueError) as exc:
    slot.empty()
    st.error(f"The planner cannot take this request: {exc}", icon=":material/error:")
    st.stop()
slot.empty()

st.caption(
    f"Searched {result.evaluated:,} configurations in {result.elapsed_s:.2f} s; "
    f"{len(result.candidates)} deployment(s) shown, {len(result.rejected)} rejected device/format families."
)
hardware_ids = {normalize_id(k): k for k in full_catalog.hardware}
if result.candidates:
    recommendation(result)
else:
    st.warning(
        "No deployment meets the objectives within the constraints. The rejected families below say what "
        "binds: relax that objective or limit, or allow more devices.",
        icon=":material/search_off:",
    )
ranked_section(candidates_frame(result, inputs, hardware_ids), req.samples)
rejected_section(result)
plan_cache_section(result, K)
pareto_section(result)
plan_whatifs.whatif_section(result, inputs, full_catalog, plan_key, share)
plan_launch.launch_section(result, full_catalog, plan_day.day_section(inputs, req, full_catalog, plan_key[1]))
if result.notes:
    st.subheader("Notes")
    st.markdown("\n".join(f"- {n}" for n in result.notes))
