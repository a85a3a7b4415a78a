"""The Estimate page's charts as Vega-Lite dicts (llmcap.app.vega): data in (polars frames or core results), a spec
out that Streamlit draws and vl-convert exports.

No numbers are computed here beyond arranging core's results for plotting; the roofline's roof comes
from llmcap.estimate.roofline. These charts are redrawn on every widget change, so they are plain dicts, not Altair
objects (bench/page_rerun.py).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from llmcap.app.vega import Spec, channel, layer, layered
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
LOG = {"type": "log"}


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


def memory_bar(parts: pl.DataFrame, capacity_gb: float) -> Spec:
    """One horizontal stacked bar of memory per device, with a rule at the device's capacity."""
    domain = [p for p in MEMORY_PARTS if p in set(parts["part"].to_list())]
    cap = pl.DataFrame({"capacity_gb": [capacity_gb], "label": [f"capacity {capacity_gb:,.1f} GB"]})
    at_capacity = channel("capacity_gb:Q")
    bar = layer(
        "memory",
        "bar",
        x=channel("gb:Q", title="GB per device", stack="zero"),
        color=channel(
            "part:N",
            scale={"domain": domain, "range": [MEMORY_PARTS[p] for p in domain]},
            legend={"orient": "top", "title": None, "direction": "horizontal"},
        ),
        order=channel("order:Q"),
        tooltip=[channel("part:N"), channel("gb:Q", title="GB", format=",.2f")],
    )
    rule = layer("capacity", {"type": "rule", "color": "#222", "strokeWidth": 2, "strokeDash": [4, 3]}, x=at_capacity)
    text = layer(
        "capacity",
        {"type": "text", "align": "right", "baseline": "bottom", "dx": -4, "y": -3, "fontSize": 11, "color": "#222"},
        x=at_capacity,
        text=channel("label:N"),
    )
    return layered({"memory": parts, "capacity": cap}, [bar, rule, text], height=48, title="Memory per device")


def roofline_chart(
    ceilings: list[dict],
    mem_bw_gbps: float,
    phases: list[dict],
    operators: list[dict] | None = None,
    device_name: str = "",
) -> Spec:
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
    x = channel("intensity_flops_per_byte:Q", title="arithmetic intensity (FLOP/byte)", scale=LOG)
    datasets = {"roof": roof}
    layers = [
        layer(
            "roof",
            {"type": "line", "color": "#555", "clip": True},
            x=x,
            y=channel("tflops:Q", title="TFLOP/s per device", scale=LOG),
            strokeDash=channel("ceiling:N", legend={"title": "roof", "orient": "bottom"}),
            tooltip=[channel("ceiling:N"), channel("tflops:Q", format=",.0f", title="TFLOP/s")],
        )
    ]
    tip = [
        channel("point:N"),
        channel("intensity_flops_per_byte:Q", title="FLOP/byte", format=",.1f"),
        channel("achieved_tflops:Q", title="TFLOP/s", format=",.1f"),
        channel("time_ms:Q", title="ms", format=",.3f"),
        channel("bound:N"),
    ]
    colour = channel(
        "phase:N",
        scale={"domain": list(PHASE_COLOURS), "range": list(PHASE_COLOURS.values())},
        legend={"title": "phase", "orient": "bottom"},
    )
    y = channel("achieved_tflops:Q")
    if operators:
        datasets["operators"] = pl.DataFrame(operators)
        layers.append(layer("operators", {"type": "point", "size": 45, "filled": False}, x=x, y=y, color=colour,
                            tooltip=tip))  # fmt: skip
    if phases:
        datasets["phases"] = pl.DataFrame(phases).with_columns(pl.col("point").alias("phase"))
        layers.append(layer("phases", {"type": "point", "size": 220, "filled": True, "opacity": 1}, x=x, y=y,
                            color=colour, tooltip=tip))  # fmt: skip
        layers.append(layer("phases", {"type": "text", "dx": 10, "align": "left", "fontSize": 12,
                                       "fontWeight": "bold"}, x=x, y=y, text=channel("point:N")))  # fmt: skip
    title = f"Roofline: {device_name}" if device_name else "Roofline"
    return layered(datasets, layers, height=320, title=title)


def latency_throughput_chart(
    curve: pl.DataFrame, metric: str, slo_ms: float | None, current_concurrency: int | None
) -> Spec:
    """`metric` ("ttft_ms" or "tpot_ms") against output tokens/s, one point per concurrency, the SLO as a rule."""
    label = {"ttft_ms": "TTFT (ms)", "tpot_ms": "TPOT (ms)"}[metric]
    x = channel("output_tokens_per_s:Q", title="output tokens/s (all replicas)")
    y = channel(f"{metric}:Q", title=label)
    tip = [
        channel("concurrency:Q", title="concurrency"),
        channel("output_tokens_per_s:Q", title="output tok/s", format=",.0f"),
        channel(f"{metric}:Q", title=label, format=",.2f"),
    ]
    datasets = {"curve": curve}
    layers = [layer("curve", {"type": "line", "point": True, "color": "#4c78a8"}, x=x, y=y, tooltip=tip)]
    if current_concurrency is not None:
        here = curve.filter(pl.col("concurrency") == current_concurrency)
        if here.height:
            datasets["here"] = here
            layers.append(layer("here", {"type": "point", "size": 180, "filled": True, "color": "#e45756"}, x=x, y=y,
                                tooltip=tip))  # fmt: skip
    if slo_ms is not None:
        datasets["slo"] = pl.DataFrame({"slo": [slo_ms], "label": [f"SLO {slo_ms:,.0f} ms"]})
        at_slo = channel("slo:Q")
        layers.append(layer("slo", {"type": "rule", "color": "#e45756", "strokeDash": [6, 4]}, y=at_slo))
        layers.append(layer("slo", {"type": "text", "align": "left", "dx": 4, "dy": -6, "color": "#e45756",
                                    "fontSize": 11}, y=at_slo, x={"value": 0}, text=channel("label:N")))  # fmt: skip
    title = f"{label.split(' ')[0]} vs throughput over concurrency"
    return layered(datasets, layers, height=260, title=title)
