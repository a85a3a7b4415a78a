"""The Plan page's day view (issue 14): a day of traffic, replicas per policy over it, and the price options.

Not a page of its own: views/plan.py calls `sidebar_widgets` inside its form, `push`/`read` with its session state,
and `day_section` after its results. Inputs live in the URL (day, pricing, scaleup, minrep, budget; see
llmcap.app.state.plan_url); an uploaded rates CSV or request log replaces the preset for the session. Numbers come
from llmcap.load.day, llmcap.plan.autoscale and llmcap.plan.price_options; this module only lays them out.
"""

from __future__ import annotations

import hashlib
import json

import polars as pl
import streamlit as st

from llmcap.app.chart_export import show_chart
from llmcap.app.day_charts import crossover_chart, crossover_frame, day_frame, rate_chart, replicas_chart
from llmcap.app.state.plan_url import MAX_MIN_REPLICAS, MAX_MISS_BUDGET_PCT, MAX_SCALE_UP_S, PlanInputs
from llmcap.app.ui import csv_download
from llmcap.catalog.loader import Catalog
from llmcap.io.output import to_frame
from llmcap.load.day import DayError, DayProfile, parse_day_file, preset_profile, presets
from llmcap.plan.autoscale import AutoscaleError, DayPlan, day_plan
from llmcap.plan.planner import plan
from llmcap.plan.price_options import OPTIONS, PriceOptionError, PriceOptions, cheapest_rows, price_options
from llmcap.plan.request import Plan, PlanRequest

K = "plan_"  # the Plan page's widget-key prefix
NONE = "none"
UPLOAD = K + "day_upload"
UPLOAD_LABEL = "Upload a day (CSV of time,rate_rps at 1 min to 1 h over a day or more, or a request log)"
FIELDS = ("scale_up_s", "min_replicas", "slo_miss_budget_pct")
DAY_COLUMNS = {
    "rank": "#",
    "policy": "policy",
    "hardware": "hardware",
    "tp": "TP",
    "weight_format": "weights",
    "engine": "engine",
    "replicas_min": "replicas min",
    "replicas_max": "replicas max",
    "gpu_hours": "GPU-hours/day",
    "usd_per_day": "$/day",
    "usd_per_million_output_tokens": "$/M output tokens",
    "slo_miss_minutes": "SLO-miss min/day",
    "slo_miss_request_share": "SLO-miss share",
    "utilization": "utilization",
    "per_replica_goodput_rps": "goodput/replica (req/s)",
    "startup_s": "replica start (s)",
    "price_basis": "price basis",
}
PRICE_COLUMNS = {
    "option": "option",
    "provider": "provider",
    "hardware": "hardware",
    "instance": "instance / API model",
    "usd_per_day": "$/day",
    "crossover_tokens_per_day": "crossover (output tokens/day)",
    "cheapest_in_class": "cheapest of class",
    "date_seen": "price seen",
    "detail": "detail",
    "source": "source",
}


# -- sidebar (inside the page's form) and session state -----------------------------------------------------------


def sidebar_widgets() -> None:
    names = presets()
    st.subheader("A day of traffic")
    st.selectbox(
        "Day profile",
        [NONE, *names],
        key=K + "day",
        format_func=lambda p: "none (one rate)" if p == NONE else names[p].name,
        help="Shape of the request rate over 24 hours (catalogs/day_profiles.yaml), scaled so its mean is the rate "
        "above; the day view sizes replicas per 15 minutes. URL key `day`.",
    )
    st.multiselect(
        "Price options", list(OPTIONS), key=K + "pricing", help="Which price classes to compare. URL key `pricing`."
    )
    cols = st.columns(3)
    cols[0].number_input(
        "Replica start (s)", 1.0, MAX_SCALE_UP_S, value=None, step=30.0, format="%g", key=K + "scale_up_s",
        placeholder="computed",
        help="Seconds from asking for a replica to its first request; empty: image pull + weight load + warm-up. "
        "URL key `scaleup`.",
    )  # fmt: skip
    cols[1].number_input("Min replicas", 0, MAX_MIN_REPLICAS, key=K + "min_replicas", help="URL key `minrep`.")
    cols[2].number_input(
        "SLO-miss budget (%)", 0.0, MAX_MISS_BUDGET_PCT, step=0.5, format="%g", key=K + "slo_miss_budget_pct",
        help="Largest share of requests a policy may leave outside the SLO (ramps included). URL key `budget`.",
    )  # fmt: skip


def push(inputs: PlanInputs) -> None:
    ss = st.session_state
    ss[K + "day"] = inputs.day or NONE
    ss[K + "pricing"] = list(inputs.pricing)
    for name in FIELDS:
        ss[K + name] = getattr(inputs, name)


def read() -> dict:
    """The day fields of PlanInputs from the widgets (an empty option list: all options)."""
    ss = st.session_state
    day = ss.get(K + "day", NONE)
    data = {
        "day": None if day == NONE else day,
        "pricing": tuple(ss.get(K + "pricing") or OPTIONS),
        "scale_up_s": ss.get(K + "scale_up_s"),
        "min_replicas": ss.get(K + "min_replicas", 1),
        "slo_miss_budget_pct": ss.get(K + "slo_miss_budget_pct", 1.0),
    }
    if data["slo_miss_budget_pct"] is None:
        data["slo_miss_budget_pct"] = 1.0
    if data["min_replicas"] is None:
        data["min_replicas"] = 1
    return data


# -- computation (cached) -----------------------------------------------------------------------------------------


@st.cache_data(show_spinner=False, max_entries=16)
def cached_peak_plan(request_json: str, custom_key: str, _catalog: Catalog) -> Plan:
    """The planner at the day's peak rate (its JSON and the session's custom entries are the cache key)."""
    return plan(PlanRequest.model_validate_json(request_json), _catalog)


@st.cache_data(show_spinner=False, max_entries=32)
def cached_day(
    request_json: str, custom_key: str, profile_key: str, params_json: str, _plan: Plan, _profile: DayProfile,
    _catalog: Catalog,
) -> tuple[DayPlan, PriceOptions]:  # fmt: skip
    p = json.loads(params_json)
    day = day_plan(
        _plan, _profile, _catalog, scale_up_s=p["scale_up_s"], min_replicas=p["min_replicas"],
        slo_miss_budget=p["slo_miss_budget_pct"] / 100.0,
    )  # fmt: skip
    req = _plan.request
    po = price_options(day, _profile, req.model, req.input_len, req.output_len, _catalog, tuple(p["pricing"]))
    return day, po


def _uploaded_profile() -> tuple[DayProfile | None, str]:
    up = st.session_state.get(UPLOAD)
    if up is None:
        return None, ""
    data = up.getvalue()
    try:
        return parse_day_file(data, up.name), hashlib.sha256(data).hexdigest()
    except DayError as exc:
        st.error(f"The uploaded day file cannot be used: {exc}. Using the preset instead.", icon=":material/error:")
        return None, ""


# -- layout -------------------------------------------------------------------------------------------------------


def _rows_frame(rows) -> pl.DataFrame:
    out = []
    for r in rows:
        d = r.model_dump(exclude={"rate_rps", "capacity_rps", "replicas"})
        d["replicas_min"], d["replicas_max"] = min(r.replicas), max(r.replicas)
        out.append(d)
    if not out:
        return pl.DataFrame({k: [] for k in DAY_COLUMNS})
    return to_frame(out).select(list(DAY_COLUMNS))


def _table(frame: pl.DataFrame, columns: dict, key: str) -> None:
    config = {k: st.column_config.Column(v) for k, v in columns.items()}
    for k, f in (
        ("usd_per_day", "$%,.2f"),
        ("usd_per_million_output_tokens", "$%.3f"),
        ("gpu_hours", "%.1f"),
        ("slo_miss_minutes", "%.1f"),
        ("slo_miss_request_share", "%.4f"),
        ("utilization", "%.2f"),
        ("per_replica_goodput_rps", "%.2f"),
        ("startup_s", "%.0f"),
        ("crossover_tokens_per_day", "%,.0f"),
    ):
        if k in columns:
            config[k] = st.column_config.NumberColumn(columns[k], format=f)
    st.dataframe(frame, hide_index=True, column_config=config, key=K + key, placeholder="–")  # fmt: skip


def _summary(day: DayPlan) -> None:
    best = {r.policy: r for r in day.best()}
    auto, peak = best.get("autoscaled"), best.get("static-peak")
    if auto is None or peak is None:
        st.warning(
            f"No deployment keeps the requests outside the SLO within {day.slo_miss_budget:.2%}: raise the budget, "
            "shorten the replica start, or keep more replicas.",
            icon=":material/warning:",
        )
        return
    st.markdown(f"#### Recommended over the day: {auto.hardware}, TP {auto.tp}, {auto.weight_format}, {auto.engine}")
    cols = st.columns(4)
    saved = 1 - auto.usd_per_day / peak.usd_per_day if peak.usd_per_day else 0.0
    cols[0].metric("$/day autoscaled", f"${auto.usd_per_day:,.0f}", f"{-saved:+.0%} vs static at peak",
                   delta_color="inverse", border=True)  # fmt: skip
    cols[1].metric("$/day static at peak", f"${peak.usd_per_day:,.0f}", border=True)
    cols[2].metric("Requests outside SLO", f"{auto.slo_miss_request_share:.3%}",
                   f"{auto.slo_miss_minutes:.0f} min/day short", delta_color="off", border=True)  # fmt: skip
    s = day.startup
    start = "" if s is None else (
        "given" if s.overridden else f"pull {s.image_pull_s:.0f} s + {s.checkpoint_gb:.0f} GB at "
        f"{s.tier_gb_per_s:.2f} GB/s ({s.tier}) + warm-up {s.warmup_s:.0f} s"
    )  # fmt: skip
    cols[3].metric("Replica start", f"{auto.startup_s:,.0f} s", start, delta_color="off", border=True)


def day_section(inputs: PlanInputs, req: PlanRequest, catalog: Catalog, custom_key: str) -> DayPlan | None:
    """The day view; returns the day plan (None without a day profile or when it cannot be made)."""
    st.subheader("A day of traffic")
    st.file_uploader(
        UPLOAD_LABEL, type=["csv"], key=UPLOAD,
        help="Replaces the preset for this session (files are not put in the URL). Request logs: llmcap, BurstGPT "
        "or Azure columns, counted per 15 minutes.",
    )  # fmt: skip
    profile, file_key = _uploaded_profile()
    if profile is None:
        if inputs.day is None:
            st.caption(
                "Choose a **day profile** in the sidebar (URL key `day`) or upload one to see replicas, cost and SLO "
                "misses over a day, and the price options."
            )
            return None
        profile, file_key = preset_profile(inputs.day, req.rate_rps), f"preset:{inputs.day}:{req.rate_rps!r}"
        st.caption(f"**{profile.name}**, mean {req.rate_rps:g} req/s (the rate above), peak "
                   f"{profile.peak_rate_rps:.3g} req/s. Source: {profile.source}")  # fmt: skip
        with st.expander("How this shape was drawn", expanded=False):
            st.markdown("\n".join(f"- {n}" for n in profile.notes))
    else:
        st.caption(f"**{profile.name}**: {profile.intervals} intervals of {profile.interval_s:g} s "
                   f"({profile.days:.3g} days), mean {profile.mean_rate_rps:.3g} req/s, peak "
                   f"{profile.peak_rate_rps:.3g} req/s.")  # fmt: skip
    peak_req = req.model_copy(update={"rate_rps": profile.peak_rate_rps})
    params = {k: getattr(inputs, k) for k in (*FIELDS, "pricing")}
    try:
        with st.spinner("Planning at the day's peak rate..."):
            peak = cached_peak_plan(peak_req.model_dump_json(), custom_key, catalog)
            day, po = cached_day(
                peak_req.model_dump_json(), custom_key, file_key, json.dumps(params), peak, profile, catalog
            )
    except (AutoscaleError, PriceOptionError, DayError, ValueError, KeyError) as exc:
        st.error(f"The day plan cannot be made: {exc}", icon=":material/error:")
        return None
    _summary(day)
    best = day.best()
    shown = best or [r for r in day.rows if r.policy == "autoscaled"][:1]
    if shown:
        frame = day_frame(day, shown)
        left, right = st.columns(2)
        with left:
            show_chart(rate_chart(frame), "plan-day-rate", key=K + "day_rate")
        with right:
            show_chart(replicas_chart(frame), "plan-day-replicas", key=K + "day_replicas")
        csv_download(frame, "plan-day-series", key=K + "dl_day_series")
        st.caption(
            "Capacity = replicas billed x the deployment's goodput per replica. A replica asked for at a step serves "
            "only after the replica start, so on the way up the serving capacity lags the line by that time; the "
            "requests above it in the meantime are the SLO misses."
        )
    st.markdown("**Policies side by side** (the recommended deployment)")
    side = _rows_frame(shown).drop("rank")
    _table(side, {k: v for k, v in DAY_COLUMNS.items() if k != "rank"}, "day_policies")
    csv_download(side, "plan-day-policies", key=K + "dl_day_policies")
    with st.expander(f"Every deployment and policy ({len(day.rows)} rows), ranked by $/day", expanded=False):
        ranked = _rows_frame(day.rows)
        _table(ranked, DAY_COLUMNS, "day_ranking")
        csv_download(ranked, "plan-day-ranking", key=K + "dl_day_ranking")
    st.caption(
        f"Deployments planned at the peak rate; capacity per replica = the planner's goodput. Autoscaled: replicas "
        f"for each 15-minute rate, held {day.scale_down_s:g} s before scaling down (Kubernetes HPA's stabilization "
        f"window), new replicas serving after the replica start; requests above the ready capacity miss the SLO. "
        f"Ranked by $/day among rows within {day.slo_miss_budget:.2%} of requests missed."
    )
    _prices(po)
    return day


def _prices(po: PriceOptions) -> None:
    best = cheapest_rows(po)
    if best:
        st.markdown("**Cheapest of each price class** for this day")
        summary = to_frame([r.model_dump() for r in best]).select(list(PRICE_COLUMNS)).drop("cheapest_in_class")
        _table(summary, {k: v for k, v in PRICE_COLUMNS.items() if k != "cheapest_in_class"}, "day_cheapest")
        csv_download(summary, "plan-day-cheapest", key=K + "dl_day_cheapest")
    st.markdown("**Every price option** for this day (each provider and instance at its cheapest deployment)")
    frame = (
        to_frame([r.model_dump() for r in po.rows]).select(list(PRICE_COLUMNS))
        if po.rows
        else pl.DataFrame({k: [] for k in PRICE_COLUMNS})
    )
    _table(frame, PRICE_COLUMNS, "day_prices")
    csv_download(frame, "plan-day-prices", key=K + "dl_day_prices")
    for n in po.notes:
        st.caption(f"Note: {n}")
    st.caption(
        "On-demand and spot follow the autoscaled schedule (spot adds replicas for interruptions at the provider's "
        "published rate, else the default of catalogs/prices/options.yaml); commitments and owned hardware bill the "
        "peak's replicas all day; hosted APIs bill tokens. Crossover: output tokens per day above which self-hosting "
        "(autoscaled, on-demand) costs no more than the API."
    )
    if po.tokens_per_day and po.hosted_usd_per_day:
        cf = crossover_frame(po)
        show_chart(crossover_chart(cf, po), "plan-day-crossover", key=K + "day_crossover")
        csv_download(cf, "plan-day-crossover", key=K + "dl_day_crossover")
    elif not po.hosted_usd_per_day:
        st.caption("No hosted API price for this model in the catalog, so no crossover chart.")
