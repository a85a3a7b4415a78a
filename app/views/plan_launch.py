"""The Plan page's "Launch" downloads (issue 14 item 4): for any ranked row, the engine's launch command and a
Kubernetes manifest (llmcap.plan.launch.export, as `llmcap plan --export RANK --target T`). With a day plan, the
autoscaler's bounds are that row's autoscaled day (llmcap.plan.autoscale.replica_bounds). Not a page: views/plan.py
calls `launch_section`."""

from __future__ import annotations

import streamlit as st

from llmcap.catalog.loader import Catalog
from llmcap.plan.autoscale import DayPlan, replica_bounds
from llmcap.plan.launch import K8S, LaunchError, export, targets
from llmcap.plan.request import Plan

K = "plan_launch_"


def _label(i: int, c) -> str:
    return f"#{i + 1}: {c.devices} x {c.hardware}, TP {c.tp}, {c.weight_format}, {c.engine}"


def launch_section(result: Plan, catalog: Catalog, day: DayPlan | None = None) -> None:
    rows = [(i, c) for i, c in enumerate(result.candidates) if c.mode == "aggregated"]
    if not rows:
        return
    st.subheader("Launch")
    known = set(targets())
    left, right = st.columns([2, 1])
    pick = left.selectbox(
        "Deployment", [i for i, _ in rows], format_func=lambda i: _label(i, result.candidates[i]), key=K + "row",
        help="A row of the ranked table (aggregated rows; disaggregated pools and mixes have no single command).",
    )  # fmt: skip
    cand = result.candidates[pick]
    choices = [t for t in (cand.engine, K8S) if t in known]
    target = right.selectbox("Target", choices, key=K + "target", help="The row's engine command, or Kubernetes.")
    bounds = replica_bounds(day, cand) if day is not None and target == K8S else None
    try:
        text = export(cand, result.request, catalog, target, replica_bounds=bounds)
    except (LaunchError, ValueError, KeyError) as exc:
        st.warning(f"This row cannot be launched as {target}: {exc}", icon=":material/warning:")
        return
    ext = "yaml" if target == K8S else "sh"
    st.download_button(
        f"Launch: download {'manifest' if target == K8S else 'command'}", data=text,
        file_name=f"llmcap-launch-{pick + 1}-{target}.{ext}", mime="text/plain", key=K + "download",
        on_click="ignore", icon=":material/rocket_launch:",
    )  # fmt: skip
    st.code(text, language="yaml" if target == K8S else "bash")
    if target == K8S:
        st.caption(
            "Autoscaler bounds from this row's autoscaled day plan."
            if bounds
            else "Autoscaler bounds: the row's replicas to twice that (choose a day profile for the day's bounds)."
        )
