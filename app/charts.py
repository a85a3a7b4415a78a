"""Altair chart builders for the dashboard: data in (polars frames or core results), `alt.Chart` out.

No numbers are computed here beyond arranging core's results for plotting; the roofline's roof comes
from llmcap.estimate.roofline. Each builder returns a chart that renders in Streamlit and exports with vl-convert.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import polars as pl

from llmcap.estimate.roofline import attainable_tflops
from llmcap.estimate.single import MemoryResult

# Memory parts in stacking order, with their colours (free last, in a pale colour).
MEMORY_PARTS = {
    "weights": "#4c78a8",
    "KV cache": "#f58518",
    "activations": "#54a24b",
    "runtime overhead": "#b279a2",
    "reserved (engine)": "#9d9d9d",
    "free": "#d8e6f3",
    "KV of one sequence (does not fit)": "#e45756",
}
PHASE_COLOURS = {"prefill": "#4c78a8", "decode": "#f58518"}
# Channels are given as alt.X(...) objects, never "field:Q" strings: a string is parsed and validated at
# encode() time (about 13 ms each), which alone would use up the page's rerun budget.
# Fit the width to the container but keep `height` as the plot's own height: Streamlit's default ("fit")
# squeezes titles, legends and axes into `height`, which flattens short charts such as the memory bar.
FIT_WIDTH = alt.AutoSizeParams(type="fit-x", contains="padding")


def memory_frame(memory: MemoryResult, fits: bool) -> pl.DataFrame:
    """Per-device memory parts in GB. When it does not fit, the KV of one sequence is stacked past the
    capacity in place of the free part, so the bar overshoots capacity by what overflows."""
    parts = {
        "weights": memory.weights_gb,
        "KV cache": memory.kv_gb,
        "activations": memory.activations_gb,
        "runtime overhead": memory.overhead_gb,
        "reserved (engine)": memory.reserved_gb,
    }
    if fits:
        parts["free"] = memory.free_gb
    else:
        parts["KV of one sequence (does not fit)"] = memory.kv_gb_per_sequence
    return pl.DataFrame(
        {"part": list(parts), "gb": [float(v) for v in parts.values()], "order": list(range(len(parts)))}
    )


def memory_bar(parts: pl.DataFrame, capacity_gb: float) -> alt.LayerChart:
    """One horizontal stacked bar of memory per device, with a rule at the device's capacity."""
    domain = [p for p in MEMORY_PARTS if p in set(parts["part"].to_list())]
    bar = (
        alt.Chart(parts)
        .mark_bar()
        .encode(
            x=alt.X("gb:Q", title="GB per device", stack="zero"),
            color=alt.Color(
                "part:N",
                scale=alt.Scale(domain=domain, range=[MEMORY_PARTS[p] for p in domain]),
                legend=alt.Legend(orient="top", title=None, direction="horizontal"),
            ),
            order=alt.Order("order:Q"),
            tooltip=[alt.Tooltip("part:N"), alt.Tooltip("gb:Q", title="GB", format=",.2f")],
        )
    )
    cap = pl.DataFrame({"capacity_gb": [capacity_gb], "label": [f"capacity {capacity_gb:,.1f} GB"]})
    rule = alt.Chart(cap).mark_rule(color="#222", strokeWidth=2, strokeDash=[4, 3]).encode(x=alt.X("capacity_gb:Q"))
    text = (
        alt.Chart(cap)
        .mark_text(align="right", baseline="bottom", dx=-4, y=-3, fontSize=11, color="#222")
        .encode(x=alt.X("capacity_gb:Q"), text=alt.Text("label:N"))
    )
    return alt.layer(bar, rule, text).properties(height=48, title="Memory per device", autosize=FIT_WIDTH)


def roofline_chart(
    ceilings: list[dict],
    mem_bw_gbps: float,
    phases: list[dict],
    operators: list[dict] | None = None,
    device_name: str = "",
) -> alt.LayerChart:
    """Log-log roofline: one roof per compute ceiling, the phase operating points, optionally each operator."""
    xs = [p["intensity_flops_per_byte"] for p in phases + (operators or [])]
    lo = min([0.5, *xs]) / 2
    hi = max([max(c["peak_tflops"] for c in ceilings) * 1e3 / mem_bw_gbps * 8, *xs]) * 2
    grid = np.geomspace(lo, hi, 64)
    roof = pl.concat(
        [
            pl.DataFrame(
                {
                    "intensity_flops_per_byte": grid,
                    "tflops": attainable_tflops(grid, c["peak_tflops"], mem_bw_gbps),
                    "ceiling": c["ceiling"],
                }
            )
            for c in ceilings
        ]
    )
    x = alt.X("intensity_flops_per_byte:Q", title="arithmetic intensity (FLOP/byte)", scale=alt.Scale(type="log"))
    roof_layer = (
        alt.Chart(roof)
        .mark_line(color="#555", clip=True)
        .encode(
            x=x,
            y=alt.Y("tflops:Q", title="TFLOP/s per device", scale=alt.Scale(type="log")),
            strokeDash=alt.StrokeDash("ceiling:N", legend=alt.Legend(title="roof", orient="bottom")),
            tooltip=[alt.Tooltip("ceiling:N"), alt.Tooltip("tflops:Q", format=",.0f", title="TFLOP/s")],
        )
    )
    layers: list[alt.Chart] = [roof_layer]
    tip = [
        alt.Tooltip("point:N"),
        alt.Tooltip("intensity_flops_per_byte:Q", title="FLOP/byte", format=",.1f"),
        alt.Tooltip("achieved_tflops:Q", title="TFLOP/s", format=",.1f"),
        alt.Tooltip("time_ms:Q", title="ms", format=",.3f"),
        alt.Tooltip("bound:N"),
    ]
    colour = alt.Color(
        "phase:N",
        scale=alt.Scale(domain=list(PHASE_COLOURS), range=list(PHASE_COLOURS.values())),
        legend=alt.Legend(title="phase", orient="bottom"),
    )
    if operators:
        ops = pl.DataFrame(operators)
        layers.append(
            alt.Chart(ops)
            .mark_point(size=45, filled=False)
            .encode(x=x, y=alt.Y("achieved_tflops:Q"), color=colour, tooltip=tip)
        )
    if phases:
        pts = pl.DataFrame(phases).with_columns(pl.col("point").alias("phase"))
        layers.append(
            alt.Chart(pts)
            .mark_point(size=220, filled=True, opacity=1)
            .encode(x=x, y=alt.Y("achieved_tflops:Q"), color=colour, tooltip=tip)
        )
        layers.append(
            alt.Chart(pts)
            .mark_text(dx=10, align="left", fontSize=12, fontWeight="bold")
            .encode(x=x, y=alt.Y("achieved_tflops:Q"), text=alt.Text("point:N"))
        )
    title = f"Roofline: {device_name}" if device_name else "Roofline"
    return alt.layer(*layers).properties(height=320, title=title, autosize=FIT_WIDTH)


def latency_throughput_chart(
    curve: pl.DataFrame, metric: str, slo_ms: float | None, current_concurrency: int | None
) -> alt.LayerChart:
    """`metric` ("ttft_ms" or "tpot_ms") against output tokens/s, one point per concurrency, the SLO as a rule."""
    label = {"ttft_ms": "TTFT (ms)", "tpot_ms": "TPOT (ms)"}[metric]
    x = alt.X("output_tokens_per_s:Q", title="output tokens/s (all replicas)")
    y = alt.Y(f"{metric}:Q", title=label)
    tip = [
        alt.Tooltip("concurrency:Q", title="concurrency"),
        alt.Tooltip("output_tokens_per_s:Q", title="output tok/s", format=",.0f"),
        alt.Tooltip(f"{metric}:Q", title=label, format=",.2f"),
    ]
    line = alt.Chart(curve).mark_line(point=True, color="#4c78a8").encode(x=x, y=y, tooltip=tip)
    layers: list[alt.Chart] = [line]
    if current_concurrency is not None:
        here = curve.filter(pl.col("concurrency") == current_concurrency)
        if here.height:
            layers.append(
                alt.Chart(here).mark_point(size=180, filled=True, color="#e45756").encode(x=x, y=y, tooltip=tip)
            )
    if slo_ms is not None:
        slo = pl.DataFrame({"slo": [slo_ms], "label": [f"SLO {slo_ms:,.0f} ms"]})
        layers.append(alt.Chart(slo).mark_rule(color="#e45756", strokeDash=[6, 4]).encode(y=alt.Y("slo:Q")))
        layers.append(
            alt.Chart(slo)
            .mark_text(align="left", dx=4, dy=-6, color="#e45756", fontSize=11)
            .encode(y=alt.Y("slo:Q"), x=alt.value(0), text=alt.Text("label:N"))
        )
    title = f"{label.split(' ')[0]} vs throughput over concurrency"
    return alt.layer(*layers).properties(height=260, title=title, autosize=FIT_WIDTH)
