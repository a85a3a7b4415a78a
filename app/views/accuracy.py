"""Accuracy page: the method in brief, and the estimator against every measured result shipped in catalogs/measured/.

The comparison is `llmcap validate`'s (calibration.validate.compare / summarize / worst on cli.estimate.default_data),
computed once per server process.
"""

from __future__ import annotations

from pathlib import Path

import altair as alt
import numpy as np
import polars as pl
import streamlit as st

from llmcap.app.chart_export import show_chart
from llmcap.app.custom_state import read_devices_from_url
from llmcap.app.ui import catalog_or_stop, csv_download, get_catalog
from llmcap.app.url_guard import warn_unused_params
from llmcap.calibration.measured import default_data
from llmcap.calibration.validate import compare, summarize, worst
from llmcap.estimate.bands import cross_validation
from llmcap.io.output import to_frame

ROOT = Path(__file__).resolve().parents[2]
METHOD = ROOT / "docs" / "method.md"
BAND = 0.25
WORST_ROWS = 15
GROUPS = {"device_class": "device class", "engine": "engine", "hardware": "hardware", "metric": "metric"}
METRIC_UNITS = {
    "ttft_ms": "ms",
    "tpot_ms": "ms",
    "e2e_ms": "ms",
    "output_tokens_per_s": "tokens/s",
    "total_tokens_per_s": "tokens/s",
    "prefill_tokens_per_s": "tokens/s",
    "decode_tokens_per_s_per_seq": "tokens/s",
}


@st.cache_data(show_spinner="Predicting every measured result...")
def accuracy_data() -> dict:
    """Points (one per measured value), error summaries by group, the worst rows, skipped rows, files read."""
    paths = default_data()
    rows, skipped = compare(paths, get_catalog())
    points = to_frame(
        [
            {
                "id": r.m.id,
                "metric": r.m.metric,
                "model": r.m.scenario.model,
                "hardware": r.m.scenario.hardware,
                "device_class": r.device_class,
                "engine": r.m.scenario.engine,
                "tp": r.m.scenario.tp,
                "input_len": r.m.scenario.input_len,
                "output_len": r.m.scenario.output_len,
                "concurrency": str(r.m.scenario.concurrency),
                "measured": r.m.value,
                "predicted": r.predicted,
                "error_pct": None if r.error is None else 100 * r.error,
                "note": r.note,
                "source": r.m.source,
            }
            for r in rows
        ]
    )
    return {
        "points": points,
        "summary": {g: to_frame(summarize(rows, g)) for g in GROUPS},
        "worst": to_frame(worst(rows, WORST_ROWS)),
        "skipped": skipped,
        "files": [str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p) for p in paths],
    }


def _scatter(points: pl.DataFrame, color: str) -> alt.LayerChart:
    """Predicted against measured on log-log axes, with y = x and a ±25% band."""
    lo = float(points.select(pl.min_horizontal("measured", "predicted")).min().item())
    hi = float(points.select(pl.max_horizontal("measured", "predicted")).max().item())
    xs = np.geomspace(lo / 1.5, hi * 1.5, 50)
    ref = pl.DataFrame({"x": xs, "y": xs, "lo": xs * (1 - BAND), "hi": xs * (1 + BAND)})
    scale = alt.Scale(type="log", domain=[lo / 1.5, hi * 1.5], nice=False)
    x_title, y_title = "measured (ms or tokens/s, as the metric)", "predicted"
    x = alt.X("x:Q", scale=scale, title=x_title)
    band = (
        alt.Chart(ref)
        .mark_area(opacity=0.15, color="#54a24b")
        .encode(x=x, y=alt.Y("lo:Q", scale=scale, title=y_title), y2="hi:Q")
    )
    diag = (
        alt.Chart(ref)
        .mark_line(color="#54a24b", strokeDash=[4, 3])
        .encode(x=x, y=alt.Y("y:Q", scale=scale, title=y_title))
    )
    dots = (
        alt.Chart(points)
        .mark_circle(size=38, opacity=0.7)
        .encode(
            x=alt.X("measured:Q", scale=scale, title=x_title),
            y=alt.Y("predicted:Q", scale=scale, title=y_title),
            color=alt.Color(f"{color}:N", title=GROUPS[color], legend=alt.Legend(orient="right")),
            tooltip=[
                "id",
                "metric",
                "model",
                "hardware",
                "engine",
                "tp",
                "input_len",
                "output_len",
                "concurrency",
                alt.Tooltip("measured:Q", format=",.4~g"),
                alt.Tooltip("predicted:Q", format=",.4~g"),
                alt.Tooltip("error_pct:Q", format="+.1f", title="error %"),
            ],
        )
    )
    title = "Predicted vs measured (log-log): dashed y = x, shaded ±25%"
    return alt.layer(band, diag, dots, title=title).properties(height=460)


def _method() -> None:
    st.markdown(
        "Each measured run is turned into the same Scenario the dashboard uses (model, hardware, layout, formats, "
        "engine, request shape, concurrency) and estimated by the one code path every page uses: an operator "
        "table per engine step, timed by a roofline with efficiencies fitted to measured data, inside a "
        "closed-loop serving model next to a memory model. The error of a value is "
        "(predicted − measured) / measured; MAPE is the mean of its absolute value."
    )
    st.caption(
        "In sample: the efficiency table (catalogs/efficiency.yaml) was fitted to these same files by "
        "`llmcap calibrate`, so these figures are a fit quality, not an out-of-sample test. "
        "`llmcap validate` prints the same numbers."
    )
    if METHOD.is_file():
        with st.expander("The whole method, with every formula and its source (docs/method.md)"):
            st.markdown(METHOD.read_text(encoding="utf-8"))


def out_of_sample() -> None:
    """The cross-validated figures (`llmcap validate --cv`, stored with the bands in catalogs/uncertainty.yaml)."""
    cv = cross_validation()
    rows = cv.get("summary") or []
    st.subheader("Out of sample: leave one model out, leave one device out")
    if not rows:
        st.info("No cross-validated figures in catalogs/uncertainty.yaml: run `llmcap validate --cv --write`.")
        return
    st.caption(
        "The figures above are in sample (the data the parameters were fitted on). Here each model, then each "
        "device, is left out of the fit in turn and predicted by parameters fitted on the rest: `lomo` = leave one "
        "model out, `lodo` = leave one device out; `mape` mean and `mdape` median absolute error (%), `w25` share "
        "within 25% (%). These are the figures that judge the estimator. "
        f"({cv.get('seconds', '?')} s of refits, from `llmcap validate --cv --write`.)"
    )
    frame = to_frame(rows)
    overall = frame.filter((pl.col("slice") == "metric") & pl.col("metric").is_in(["ttft_ms", "tpot_ms"]))
    cols = st.columns(4)
    for i, r in enumerate(overall.sort("metric", descending=True).iter_rows(named=True)):
        name = r["metric"].removesuffix("_ms").upper()
        cols[2 * i].metric(f"{name}, model held out", f"{r['mape_lomo']:.1f}%", border=True,
                           help=f"mean absolute error; in sample {r['mape_in']:.1f}%")  # fmt: skip
        cols[2 * i + 1].metric(f"{name}, device held out", f"{r['mape_lodo']:.1f}%", border=True,
                               help="mean absolute error")  # fmt: skip
    st.dataframe(frame, hide_index=True, key="acc_cv")
    csv_download(frame, "accuracy-cross-validated", key="acc_csv_cv")
    if cv.get("coverage"):
        st.caption("80% error bands: share of held-out values inside bands fitted without their group.")
        st.dataframe(to_frame(cv["coverage"]), hide_index=True, key="acc_cv_coverage")


def main() -> None:
    st.title("Accuracy")
    catalog_or_stop()
    read_devices_from_url()  # `dev` travels with every page; a bad one is named here too
    warn_unused_params({"dev"})
    _method()
    data = accuracy_data()
    points: pl.DataFrame = data["points"]
    used = points.filter(pl.col("predicted").is_not_null())
    st.caption(
        f"{used.height} of {points.height} measured values compared "
        f"({points.height - used.height} did not resolve or did not fit), from {', '.join(data['files'])}."
    )
    if used.is_empty():
        st.info("No measured value could be compared.")
        return

    overall = data["summary"]["metric"]
    tiles = overall.filter(pl.col("metric").is_in(["ttft_ms", "tpot_ms"])).sort("metric", descending=True)
    cols = st.columns(2 * tiles.height + 1)
    for i, r in enumerate(tiles.iter_rows(named=True)):
        name = r["metric"].removesuffix("_ms").upper()
        cols[2 * i].metric(f"{name} MAPE", f"{r['mape_pct']:.1f}%", border=True, help=f"over {r['rows']} runs")
        cols[2 * i + 1].metric(f"{name} within ±25%", f"{r['within_25_pct']:.0f}%", border=True)
    cols[-1].metric("Values compared", f"{used.height:,}", border=True)
    out_of_sample()

    st.subheader("Predicted vs measured")
    c1, c2 = st.columns(2)
    metrics = sorted(used["metric"].unique().to_list(), key=lambda m: list(METRIC_UNITS).index(m))
    chosen = c1.multiselect(
        "Metrics", metrics, default=["ttft_ms", "tpot_ms"], key="acc_metrics", help="ms for latencies, tokens/s else"
    )
    color = c2.selectbox("Colour by", list(GROUPS), index=1, format_func=GROUPS.get, key="acc_color")
    shown = used.filter(pl.col("metric").is_in(chosen or metrics))
    show_chart(_scatter(shown, color), "accuracy-scatter", key="acc_scatter")

    st.subheader("Error figures")
    st.caption(
        "`mape_pct`: mean absolute error; `median_error_pct`: signed (positive = the estimate is high); "
        "`within_25_pct`: share of values within ±25%."
    )
    tabs = st.tabs([f"By {label}" for label in GROUPS.values()])
    for tab, group in zip(tabs, GROUPS, strict=True):
        with tab:
            frame = data["summary"][group]
            st.dataframe(frame, hide_index=True, key=f"acc_summary_{group}")
            csv_download(frame, f"accuracy-by-{group.replace('_', '-')}", key=f"acc_csv_{group}")

    st.subheader(f"The {WORST_ROWS} largest errors")
    st.dataframe(data["worst"], hide_index=True, key="acc_worst")
    st.subheader("Every compared value")
    st.dataframe(
        points.drop("source"),
        hide_index=True,
        key="acc_points",
        column_config={"error_pct": st.column_config.NumberColumn("error_pct", format="%+.1f")},
    )
    csv_download(points, "accuracy-points", key="acc_csv_points")
    if data["skipped"]:
        with st.expander(f"{len(data['skipped'])} rows could not be read"):
            st.code("\n".join(data["skipped"]))


main()
