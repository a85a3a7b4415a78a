"""The Plan page's what-ifs (llmcap.plan.whatif): their inputs, table, chart and the cost sensitivity table.

A fragment: changing a what-if reruns this section only (one re-plan, cached per change in llmcap.app.plan_cache),
not the page's base plan, its tables and fronts (bench/page_rerun.py, plan what-ifs). The what-ifs stay in the URL
(keys xbw, xflops, xprice, xrate, sens): each run writes the page's query and the sidebar's share link anew.
"""

from __future__ import annotations

import json

import polars as pl
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from llmcap.app.chart_export import show_chart
from llmcap.app.plan_cache import cached_sensitivity, cached_whatifs
from llmcap.app.plan_charts import change_chart
from llmcap.app.state.plan_url import (
    MAX_TRAFFIC_X,
    MAX_WHATIF_PCT,
    MIN_WHATIF_PCT,
    PlanInputs,
    plan_query,
    whatif_changes,
)
from llmcap.app.ui import csv_download, share_code, write_query
from llmcap.catalog.loader import Catalog
from llmcap.io.output import to_frame
from llmcap.plan.request import Plan

K = "plan_"  # the Plan page's widget-key prefix
LAST_QUERY = K + "last_query"
NUMBERS = ("whatif_bw_pct", "whatif_compute_pct", "whatif_price_pct", "whatif_traffic_x")
FIELDS = (*NUMBERS, "sensitivity")


def _inputs(base: PlanInputs) -> tuple[PlanInputs, list[str]]:
    """The what-if widgets, drawn, and `base` with their values (a cleared box keeps its default, with a message)."""
    pct = (MIN_WHATIF_PCT, MAX_WHATIF_PCT, 10.0)
    boxes = (
        ("Bandwidth (%)", *pct, "whatif_bw_pct",
         "Change every device's memory bandwidth by this percent. URL key `xbw`."),
        ("Compute (%)", *pct, "whatif_compute_pct",
         "Change every device's peak compute by this percent. URL key `xflops`."),
        ("Prices (%)", *pct, "whatif_price_pct", "Change every price by this percent. URL key `xprice`."),
        ("Traffic (×)", 0.01, MAX_TRAFFIC_X, 0.5, "whatif_traffic_x", "Multiply the request rate. URL key `xrate`."),
    )  # fmt: skip
    values, problems = {}, []
    for col, (label, low, high, step, name, text) in zip(st.columns(len(boxes)), boxes, strict=True):
        values[name] = col.number_input(label, low, high, step=step, format="%g", key=K + name, help=text)
        if values[name] is None:
            values[name] = PlanInputs.model_fields[name].default
            problems.append(f"{label} was empty: using {values[name]:g}.")
    values["sensitivity"] = st.checkbox(
        "Cost sensitivity table", key=K + "sensitivity",
        help="Move each input 10% down and up and re-plan (16 searches; takes several seconds). URL key `sens`.",
    )  # fmt: skip
    return base.model_copy(update=values), problems


def _table_and_chart(
    widths: list[float], shown: pl.DataFrame, frame: pl.DataFrame, name: str, keys: tuple[str, str],
    column_config: dict, column_order: list[str], chart,
) -> None:  # fmt: skip
    """`shown` as a table (downloadable as `frame`, llmcap-plan-<name>.csv) beside its bar chart; `keys` are the
    table's and the chart's widget keys (after K)."""
    left, right = st.columns(widths)
    with left:
        st.dataframe(shown, hide_index=True, key=K + keys[0], placeholder="–", column_order=column_order,
                     column_config=column_config)  # fmt: skip
        csv_download(frame, f"plan-{name}", key=K + "dl_" + name)
    with right:
        show_chart(chart, f"plan-{name}", key=K + keys[1])


@st.fragment
def whatif_section(
    result: Plan, page_inputs: PlanInputs, catalog: Catalog, key: tuple[str, str], share: DeltaGenerator
) -> None:
    """What-ifs against the recommendation of `result` (the plan of `key`: request JSON, custom entries), and the
    page's URL and share link with the what-ifs now chosen."""
    st.subheader("What-ifs")
    inputs, problems = _inputs(page_inputs)
    share_code(share, write_query(plan_query(inputs), LAST_QUERY), "/plan")
    for p in problems:
        st.warning(p, icon=":material/warning:")
    if not result.candidates:
        st.caption("No recommendation, so nothing to compare the what-ifs with.")
        return
    base = result.candidates[0]
    with st.spinner("Re-planning the what-ifs..."):
        rows = cached_whatifs(*key, json.dumps(whatif_changes(inputs)), result, catalog)
    frame = to_frame(
        [{"what_if": "as planned", "feasible": True, "hardware": base.hardware, "devices": base.devices,
          "mode": base.mode, "usd_per_hour": base.usd_per_hour, "change_pct": 0.0}]
        + [w.model_dump(exclude={"name"}) | {"what_if": w.name} for w in rows]
    ).select(["what_if", "feasible", "hardware", "devices", "mode", "usd_per_hour", "change_pct"])  # fmt: skip
    shown = frame.with_columns(
        pl.when(pl.col("feasible"))
        .then(pl.format("{} × {}, {}", "devices", "hardware", "mode"))
        .otherwise(pl.lit("nothing qualifies"))
        .alias("deployment")
    )
    bars = frame.filter(pl.col("what_if") != "as planned").rename({"what_if": "label"})
    _table_and_chart(
        [1.5, 1], shown, frame, "whatifs", ("whatifs", "whatif_chart"),
        {
            "what_if": st.column_config.TextColumn("what-if"),
            "deployment": st.column_config.TextColumn("cheapest deployment"),
            "usd_per_hour": st.column_config.NumberColumn("$/hour", format="$%.2f"),
            "change_pct": st.column_config.NumberColumn("change (%)", format="%+.1f"),
        },
        ["what_if", "deployment", "usd_per_hour", "change_pct"],
        change_chart(bars.drop_nulls("change_pct"), "change_pct", "Cost of the cheapest deployment", "change (%)"),
    )  # fmt: skip
    st.caption(
        "Each what-if re-plans over the device types of the top three deployments with one input changed "
        "(llmcap.plan.whatif) and compares the cheapest $/hour with the recommendation's. Whole instances, so small "
        "changes often cost nothing until a replica or instance is added. A change here re-plans this section only."
    )
    if inputs.sensitivity:
        _sensitivity(result, catalog, key)


def _sensitivity(result: Plan, catalog: Catalog, key: tuple[str, str]) -> None:
    with st.spinner("Re-planning each input 10% down and up..."):
        sens = cached_sensitivity(*key, result, catalog)
    table = to_frame([r.model_dump() for r in sens])
    step = f"{sens[0].step_pct:g}%" if sens else "step"
    st.markdown(f"**Cost sensitivity**: each input moved {step} down and up; elasticity = % change in $/hour per "
                "% change in the input")  # fmt: skip
    _table_and_chart(
        [1.3, 1], table, table, "sensitivity", ("sensitivity_table", "sensitivity_chart"),
        {
            "usd_per_hour_down": st.column_config.NumberColumn(f"$/hour at -{step}", format="$%.2f"),
            "usd_per_hour_up": st.column_config.NumberColumn(f"$/hour at +{step}", format="$%.2f"),
            "elasticity": st.column_config.NumberColumn("elasticity", format="%+.2f"),
        },
        ["input", "usd_per_hour_down", "usd_per_hour_up", "elasticity"],
        change_chart(table.rename({"input": "label"}).drop_nulls("elasticity"), "elasticity",
                     "Cost elasticity per input", "elasticity"),
    )  # fmt: skip
