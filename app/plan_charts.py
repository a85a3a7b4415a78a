"""Charts of the Plan page: the planner's Pareto fronts (Altair, cached per plan) and signed what-if bars (a Vega-Lite
dict, redrawn on every what-if change); no numbers computed here."""

from __future__ import annotations

import json

import altair as alt
import polars as pl

from llmcap.app.vega import FIT_WIDTH, Spec, channel, layer, layered
from llmcap.plan.request import PlanRequest


def front_chart(points: pl.DataFrame, front: str, req: PlanRequest) -> alt.LayerChart:
    """One Pareto front: the frontier as a line, its points coloured by device, with the objective's rule."""
    pts = points.filter(pl.col("front") == front).sort("x")
    x_label, y_label = pts["x_label"][0], pts["y_label"][0]
    log = alt.Scale(type="log")
    x = alt.X("x:Q", title=x_label, scale=log)
    y = alt.Y("y:Q", title=y_label, scale=log)
    tip = [
        alt.Tooltip("hardware:N"),
        alt.Tooltip("layout:N"),
        alt.Tooltip("weight_format:N", title="weights"),
        alt.Tooltip("max_seqs:Q", title="max seqs"),
        alt.Tooltip("x:Q", title=x_label, format=",.4~g"),
        alt.Tooltip("y:Q", title=y_label, format=",.4~g"),
    ]
    line = alt.Chart(pts).mark_line(color="#999", interpolate="step-after" if front == "cost" else "linear")
    dots = (
        alt.Chart(pts)
        .mark_point(filled=True, size=70)
        .encode(
            x=x,
            y=y,
            color=alt.Color("hardware:N", legend=alt.Legend(orient="bottom", columns=4, title=None)),
            tooltip=tip,
        )
    )
    layers = [line.encode(x=x, y=y), dots]
    if front == "throughput":
        slo = pl.DataFrame({"x": [1e3 / req.slo.tpot_ms], "label": [f"TPOT objective {req.slo.tpot_ms:g} ms"]})
        layers.append(alt.Chart(slo).mark_rule(color="#e45756", strokeDash=[6, 4]).encode(x=alt.X("x:Q")))
        layers.append(
            alt.Chart(slo)
            .mark_text(align="left", dx=4, y=8, color="#e45756", fontSize=11)
            .encode(x=alt.X("x:Q"), text=alt.Text("label:N"))
        )
    title = "Throughput per device vs per user" if front == "throughput" else "Cost vs p90 end-to-end latency"
    return alt.layer(*layers).properties(height=300, title=title, autosize=FIT_WIDTH)


def change_chart(frame: pl.DataFrame, x: str, title: str, x_title: str) -> Spec:
    """Horizontal bars of one signed figure per row (red up, green down), with a rule at zero; a Vega-Lite dict
    (llmcap.app.vega), as the what-ifs redraw it on every change."""
    bars = layer(
        "rows",
        "bar",
        y=channel("label:N", title=None, sort=None, axis={"labelLimit": 220}),
        x=channel(f"{x}:Q", title=x_title),
        color={"condition": {"test": f"datum[{json.dumps(x)}] > 0", "value": "#e45756"}, "value": "#54a24b"},
        tooltip=[channel("label:N", title="input"), channel(f"{x}:Q", title=x_title, format="+,.3~f")],
    )
    zero = layer("zero", {"type": "rule", "color": "#333"}, x=channel("z:Q"))
    return layered({"rows": frame, "zero": pl.DataFrame({"z": [0.0]})}, [bars, zero], height={"step": 28},
                   title=title)  # fmt: skip
