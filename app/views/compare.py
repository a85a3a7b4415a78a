"""Compare page: up to six scenarios side by side, and one parameter varied across all of them.

Numbers come from estimate.compare (one estimate.sweep call per table); this page holds widgets, layout and charts.
State in the URL: `cmp` (the scenarios, llmcap.io.scenario_io's compact form), `vary` and `vals` (the swept
parameter and its values), `dev` (custom devices), and the per-answer view's keys (llmcap.app.state.answers_url).
A bad value is a warning naming the parameter.
"""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st
from pydantic import ValidationError

from llmcap.app.chart_export import show_chart
from llmcap.app.custom_state import (
    custom_devices,
    custom_models,
    extended_catalog,
    read_devices_from_url,
    scenario_file_text,
    scenario_file_uploader,
    write_devices_to_url,
)
from llmcap.app.state.answers_url import ANSWER_KEYS
from llmcap.app.ui import catalog_or_stop, csv_download
from llmcap.app.url_guard import warn_unused_params
from llmcap.app.views.compare_answers import answers_section
from llmcap.catalog.loader import Catalog, UnknownIdError, normalize_id
from llmcap.estimate.compare import AXES, evaluate_rows, label, parse_values, vary_rows
from llmcap.io.output import to_frame
from llmcap.io.scenario_io import MAX_SCENARIOS, decode_scenarios, encode_scenarios
from llmcap.scenario import ENGINES, Scenario, validation_text

LLAMA8 = "meta-llama/Llama-3.1-8B-Instruct"
DEFAULTS = [
    Scenario(model=LLAMA8, hardware="h100-sxm", engine="vllm", concurrency=16),
    Scenario(model=LLAMA8, hardware="h100-sxm", weight_format="fp8", kv_format="fp8", engine="vllm", concurrency=16),
    Scenario(model=LLAMA8, hardware="a100-sxm-80gb", engine="vllm", concurrency=16),
]
KV_DEFAULT = "default"
URL_KEYS = ("cmp", "vary", "vals", "dev", *ANSWER_KEYS)
INT_FIELDS = ("tp", "pp", "ep", "replicas", "input_len", "output_len")
METRICS = {
    "ttft_ms": "TTFT (ms)",
    "tpot_ms": "TPOT (ms)",
    "output_tokens_per_s": "output tokens/s",
    "output_tokens_per_s_per_device": "output tokens/s per device",
}
MEMORY_PARTS = {
    "weights_gb_per_device": "weights",
    "kv_gb_per_device": "KV cache",
    "activations_gb_per_device": "activations",
    "overhead_gb_per_device": "runtime overhead",
    "reserved_gb_per_device": "kept back by the engine",
    "free_gb_per_device": "free",
}
HELP = {
    "tp": "tensor-parallel devices per replica",
    "pp": "pipeline stages per replica",
    "ep": "expert-parallel size (MoE); must divide tp",
    "replicas": "independent copies of the deployment",
    "input_len": "prompt tokens per request",
    "output_len": "generated tokens per request",
    "concurrency": "requests in flight over the whole deployment (an integer), or 'max' for as many as fit",
    "kv_format": "KV-cache storage format; 'default' takes the weight format's",
}


# -- state -------------------------------------------------------------------------------------------------------
def _canonical(scn: Scenario, catalog: Catalog, i: int) -> tuple[Scenario, list[str]]:
    """Catalog spellings of the ids (selectboxes list those); unknown ids fall back to S1's defaults."""
    problems, update = [], {}
    try:
        update["model"] = catalog.model(scn.model).meta.id
    except UnknownIdError as exc:
        problems.append(f"scenario {i}: {exc}; using {DEFAULTS[0].model}")
        update["model"] = DEFAULTS[0].model
    try:
        update["hardware"] = catalog.device(scn.hardware).id
    except UnknownIdError as exc:
        problems.append(f"scenario {i}: {exc}; using {DEFAULTS[0].hardware}")
        update["hardware"] = DEFAULTS[0].hardware
    for field, table in (("weight_format", catalog.formats), ("kv_format", catalog.kv_formats)):
        value = getattr(scn, field)
        if value is None:
            continue
        if normalize_id(value) in table:
            update[field] = normalize_id(value)
        else:
            problems.append(f"scenario {i}: unknown {field} '{value}'; using the default")
            update[field] = getattr(DEFAULTS[0], field)
    return scn.model_copy(update=update), problems


def _canonical_all(scns: list[Scenario], catalog: Catalog, where: str) -> list[Scenario]:
    out = []
    for i, scn in enumerate(scns, start=1):
        fixed, problems = _canonical(scn, catalog, i)
        out.append(fixed)
        for p in problems:
            st.warning(f"{where}: {p}", icon=":material/warning:")
    return out


def _from_url(catalog: Catalog) -> list[Scenario]:
    text = st.query_params.get("cmp")
    if not text:
        return list(DEFAULTS)
    scns, problems = decode_scenarios(text)
    out = []
    for i, scn in enumerate(scns, start=1):
        fixed, bad = _canonical(scn, catalog, i)
        out.append(fixed)
        problems += bad
    for p in problems:
        st.warning(f"URL parameter `cmp`: {p}", icon=":material/warning:")
    return out or list(DEFAULTS)


def _widget_values(scn: Scenario) -> dict:
    d = scn.model_dump()
    d["kv_format"] = scn.kv_format or KV_DEFAULT
    d["concurrency"] = str(scn.concurrency)
    return d


def _set_scenarios(scns: list[Scenario]) -> None:
    """Replace the edited scenarios (URL or file load): widget state is rewritten from them."""
    st.session_state["cmp_rows"] = [_widget_values(s) for s in scns[:MAX_SCENARIOS]]
    st.session_state["cmp_n"] = len(st.session_state["cmp_rows"])
    for i, row in enumerate(st.session_state["cmp_rows"]):
        for field, value in row.items():
            st.session_state[f"cmp{i}_{field}"] = value


def _scenario_editor(i: int, catalog: Catalog, models: list[str], hardware: list[str]) -> Scenario | None:
    """The widgets of scenario i (0-based), in a sidebar expander; the Scenario, or None with a warning."""
    rows = st.session_state["cmp_rows"]
    if i >= len(rows):
        rows.append(dict(rows[-1]))
    for field, value in rows[i].items():
        st.session_state.setdefault(f"cmp{i}_{field}", value)
    k = f"cmp{i}_"
    current = rows[i]
    with st.expander(f"S{i + 1}: {current['model'].rsplit('/', 1)[-1]} · {current['hardware']}", expanded=i == 0):
        st.selectbox("Model", models, key=k + "model")
        st.selectbox("Hardware", hardware, key=k + "hardware")
        c1, c2 = st.columns(2)
        for col, field in zip((c1, c2, c1, c2), ("tp", "pp", "ep", "replicas"), strict=True):
            col.number_input(
                field.upper() if field != "replicas" else "Replicas",
                1,
                4096 if field != "replicas" else 100_000,
                key=k + field,
                help=HELP[field],
            )
        c1.selectbox("Weights", list(catalog.formats), key=k + "weight_format", help="weight format")
        c2.selectbox("KV cache", [KV_DEFAULT, *catalog.kv_formats], key=k + "kv_format", help=HELP["kv_format"])
        st.selectbox("Engine", ENGINES, key=k + "engine")
        c1, c2 = st.columns(2)
        c1.number_input("Input", 1, 10_000_000, step=256, key=k + "input_len", help=HELP["input_len"])
        c2.number_input("Output", 1, 10_000_000, step=64, key=k + "output_len", help=HELP["output_len"])
        st.text_input("Concurrency", key=k + "concurrency", help=HELP["concurrency"])
    values = {f: st.session_state[k + f] for f in rows[i]}
    rows[i] = values
    data = {**values, "kv_format": None if values["kv_format"] == KV_DEFAULT else values["kv_format"]}
    conc = str(values["concurrency"]).strip().lower()
    try:
        data["concurrency"] = "max" if conc == "max" else int(conc)
    except ValueError:
        st.warning(f"S{i + 1}: concurrency '{conc}' is not a whole number or 'max'; scenario left out")
        return None
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        st.warning(f"S{i + 1} left out: {validation_text(exc)}", icon=":material/warning:")
        return None


def _editors(catalog: Catalog) -> list[Scenario]:
    """The scenario count and one expander per scenario; the valid Scenarios."""
    models = [*custom_models(), *catalog.models]
    hardware = [*custom_devices(), *sorted(set(catalog.hardware) - set(custom_devices()))]
    st.number_input(
        "How many", 1, MAX_SCENARIOS, key="cmp_n", help=f"up to {MAX_SCENARIOS}; a new one starts as a copy of the last"
    )
    del st.session_state["cmp_rows"][st.session_state["cmp_n"] :]
    scns = [_scenario_editor(i, catalog, models, hardware) for i in range(st.session_state["cmp_n"])]
    return [s for s in scns if s is not None]


# -- charts --------------------------------------------------------------------------------------------------------
def _short(name: str) -> str:
    return name.split(":")[0]


def _short_expr() -> pl.Expr:
    """_short as a native polars expression: a Python function mapped over a column runs on polars' thread pool and
    needs the GIL there, which deadlocked a dashboard process serving several sessions (bench/load_sessions.py)."""
    return pl.col("scenario").str.split(":").list.first()


def _long_with_bands(table: pl.DataFrame, index: list[str]) -> pl.DataFrame:
    """One row per (index, metric): value and its 80% interval (low, high; per device: the deployment's / devices)."""
    parts = []
    for metric, name in METRICS.items():
        band = metric.removesuffix("_per_device")
        scale = pl.col("devices") if metric.endswith("_per_device") else pl.lit(1.0)
        parts.append(
            table.select(
                *index,
                pl.lit(name).alias("metric"),
                pl.col(metric).cast(pl.Float64).alias("value"),
                (pl.col(f"{band}_low").cast(pl.Float64) / scale).alias("low"),
                (pl.col(f"{band}_high").cast(pl.Float64) / scale).alias("high"),
            )
        )
    return pl.concat(parts)


def _bars(table: pl.DataFrame) -> alt.FacetChart:
    long = _long_with_bands(table.filter(pl.col("status") == "ok"), ["scenario"])
    long = long.with_columns(_short_expr().alias("s"))
    tooltip = ["scenario", "metric", alt.Tooltip("value:Q", format=",.4~g"), alt.Tooltip("low:Q", format=",.4~g"),
               alt.Tooltip("high:Q", format=",.4~g")]  # fmt: skip
    base = alt.Chart().encode(x=alt.X("s:N", title=None, axis=alt.Axis(labelAngle=0)), tooltip=tooltip)
    bars = base.mark_bar().encode(
        y=alt.Y("value:Q", title=None),
        color=alt.Color("scenario:N", title="scenario", legend=alt.Legend(orient="bottom", columns=2, labelLimit=400)),
    )
    whiskers = base.mark_errorbar(ticks=True, color="#333").encode(y=alt.Y("low:Q", title=None), y2="high:Q")
    return (
        alt.layer(bars, whiskers, data=long)
        .properties(width=150, height=200)
        .facet(column=alt.Column("metric:N", title=None, sort=list(METRICS.values())))
        .resolve_scale(y="independent")
    )


def _memory(table: pl.DataFrame) -> alt.Chart:
    """Stacked bar per scenario: where each device's memory goes, summing to its capacity."""
    order = list(MEMORY_PARTS.values())
    long = (
        table.filter(pl.col("status") != "error")
        .unpivot(index=["scenario"], on=list(MEMORY_PARTS), variable_name="part", value_name="gb")
        .with_columns(
            pl.col("part").replace_strict(MEMORY_PARTS),
            pl.col("part")
            .replace_strict({k: i for i, k in enumerate(MEMORY_PARTS)}, return_dtype=pl.Int64)
            .alias("rank"),
            _short_expr().alias("s"),
        )
    )
    colors = ["#4c78a8", "#f58518", "#e45756", "#b279a2", "#9d9d9d", "#dcdcdc"]
    return (
        alt.Chart(long, title="Memory per device (GB), up to its capacity")
        .mark_bar()
        .encode(
            y=alt.Y("s:N", title=None),
            x=alt.X("sum(gb):Q", title="GB per device"),
            color=alt.Color(
                "part:N",
                sort=order,
                title=None,
                scale=alt.Scale(domain=order, range=colors),
                legend=alt.Legend(orient="bottom"),
            ),
            order=alt.Order("rank:Q"),
            tooltip=["scenario", "part", alt.Tooltip("gb:Q", format=",.2f", title="GB")],
        )
        .properties(height=alt.Step(34))
    )


def _lines(rows: pl.DataFrame, axis: str) -> alt.FacetChart:
    spec = AXES[axis]
    long = _long_with_bands(rows, ["scenario", spec.field])
    if spec.numeric:
        x = alt.X(
            f"{spec.field}:Q",
            title=spec.label,
            scale=alt.Scale(type="log", base=2) if spec.log_scale else alt.Undefined,
        )
    else:
        x = alt.X(f"{spec.field}:N", title=spec.label, sort=None, axis=alt.Axis(labelAngle=0))
    color = alt.Color("scenario:N", title="scenario", legend=alt.Legend(orient="bottom", columns=2, labelLimit=400))
    lines = (
        alt.Chart()
        .mark_line(point=True)
        .encode(
            x=x,
            y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
            color=color,
            tooltip=["scenario", spec.field, "metric", alt.Tooltip("value:Q", format=",.4~g"),
                     alt.Tooltip("low:Q", format=",.4~g"), alt.Tooltip("high:Q", format=",.4~g")],
        )
    )  # fmt: skip
    band = alt.Chart().mark_area(opacity=0.15).encode(x=x, y=alt.Y("low:Q", title=None), y2="high:Q", color=color)
    return (
        alt.layer(band, lines, data=long)
        .properties(width=330, height=220)
        .facet(facet=alt.Facet("metric:N", title=None, sort=list(METRICS.values())), columns=2)
        .resolve_scale(y="independent")
    )


# -- page ----------------------------------------------------------------------------------------------------------
def _vary_from_url() -> None:
    """Axis and values from the URL the first time, validated (bad ones: warning and defaults)."""
    if "cmp_vary" not in st.session_state:
        axis = st.query_params.get("vary", "concurrency")
        if axis not in AXES:
            st.warning(f"URL parameter `vary`: unknown parameter '{axis}'; choose one of {', '.join(AXES)}")
            axis = "concurrency"
        st.session_state["cmp_vary"] = axis
        vals = st.query_params.get("vals")
        if vals:
            try:
                parse_values(axis, vals)
                st.session_state[f"cmp_vals_{axis}"] = vals
            except ValueError as exc:
                st.warning(f"URL parameter `vals`: {exc}; using the defaults")


def main() -> None:
    st.title("Compare")
    st.caption(
        f"Up to {MAX_SCENARIOS} deployments side by side (edit them in the sidebar), then one parameter varied "
        "across all of them. Closed-loop serving at the given concurrency; memory and bounds per device."
    )
    catalog_or_stop()
    read_devices_from_url()
    warn_unused_params(URL_KEYS)
    st.sidebar.header("Scenarios")
    editor = st.sidebar.container()
    with st.sidebar:  # read before the editors are drawn, so a loaded file can set their values
        doc = scenario_file_uploader("cmp_file")
    try:
        catalog = extended_catalog()
    except ValueError as exc:
        st.warning(str(exc))
        catalog = catalog_or_stop()
    pending = st.session_state.pop("cmp_pending", None)  # a scenario file loaded on the Catalog page
    if doc is not None and doc.scenarios:
        pending = list(doc.scenarios)
    if pending:
        _set_scenarios(_canonical_all(pending, catalog, "scenario file"))
    elif "cmp_rows" not in st.session_state:
        _set_scenarios(_from_url(catalog))
    with editor:
        scns = _editors(catalog)
    _vary_from_url()
    if not scns:
        st.info("No valid scenario: fix the ones in the sidebar.")
        return

    rows = evaluate_rows(scns, catalog, explain=True)
    names = [label(i, s) for i, s in enumerate(scns, start=1)]
    table = to_frame(
        [
            {"scenario": n, **s.model_dump(exclude={"kv_format"}), "kv_format": s.kv_format or "", **r}
            for n, s, r in zip(names, scns, rows, strict=True)
        ]
    )
    st.subheader("Side by side")
    for n, r in zip(names, rows, strict=True):
        if r["status"] == "error":
            st.warning(f"{_short(n)}: {r['message']}", icon=":material/warning:")
        elif r["status"] == "does_not_fit":
            st.info(f"{_short(n)} does not fit: {r['message']}", icon=":material/block:")
    shown = [
        "scenario",
        "status",
        "devices",
        *METRICS,
        "e2e_ms",
        "max_concurrency",
        "prefill_bound",
        "decode_bound",
        *MEMORY_PARTS,
        "capacity_gb_per_device",
    ]
    st.dataframe(
        table.select(shown),
        hide_index=True,
        column_config={
            "scenario": st.column_config.TextColumn("scenario", pinned=True, width="large"),
            **{c: st.column_config.NumberColumn(c, format="%.1f") for c in ("ttft_ms", "tpot_ms", "e2e_ms")},
            **{
                c: st.column_config.NumberColumn(c, format="%.0f")
                for c in ("output_tokens_per_s", "output_tokens_per_s_per_device")
            },
            **{c: st.column_config.NumberColumn(c, format="%.2f") for c in (*MEMORY_PARTS, "capacity_gb_per_device")},
        },
        key="cmp_table",
    )
    with st.container(horizontal=True, gap="small"):
        csv_download(table, "compare", key="cmp_csv")
        st.download_button(
            "Save scenario file",
            scenario_file_text(scns),
            file_name="llmcap-scenarios.json",
            mime="application/json",
            key="cmp_save",
            on_click="ignore",
            icon=":material/save:",
            help="scenarios and custom devices/models as JSON; load it back in the sidebar or on the Catalog page",
        )

    if table.filter(pl.col("status") == "ok").height:
        show_chart(_bars(table), "compare-metrics", key="cmp_bars", stretch=False)
    if table.filter(pl.col("status") != "error").height:
        show_chart(_memory(table), "compare-memory", key="cmp_memory")

    st.subheader("Vary one parameter")
    c1, c2 = st.columns([1, 2])
    axis = c1.selectbox("Parameter", list(AXES), format_func=lambda a: AXES[a].label, key="cmp_vary")
    vals_key = f"cmp_vals_{axis}"
    st.session_state.setdefault(vals_key, ", ".join(str(v) for v in AXES[axis].defaults))
    text = c2.text_input("Values", key=vals_key, help="comma-separated; every scenario is evaluated at each value")
    try:
        values = parse_values(axis, text)
    except ValueError as exc:
        st.warning(f"{exc}; using the defaults", icon=":material/warning:")
        text = ", ".join(str(v) for v in AXES[axis].defaults)
        values = list(AXES[axis].defaults)
    vrows, problems = vary_rows(scns, axis, values, catalog)
    for p in problems:
        st.caption(f"Left out: {p}")
    vframe = to_frame(vrows) if vrows else pl.DataFrame()
    fitting = vframe.filter(pl.col("status") == "ok") if vrows else vframe
    if fitting.height:
        show_chart(_lines(fitting, axis), f"vary-{axis}", key="cmp_lines", stretch=False)
        st.caption("Points where a scenario does not fit in memory are not drawn.")
    else:
        st.info("No scenario fits at any of these values.")
    if vrows:
        with st.expander("Sweep table"):
            st.dataframe(
                vframe.select(["scenario", AXES[axis].field, "status", *METRICS, "e2e_ms", "kv_gb_per_device"]),
                hide_index=True,
                key="cmp_vary_table",
            )
            csv_download(vframe, f"vary-{axis}", key="cmp_vary_csv")

    st.query_params["cmp"] = encode_scenarios(scns)
    st.query_params["vary"] = axis
    st.query_params["vals"] = ",".join(str(v) for v in values)
    write_devices_to_url()
    answers_section(catalog)


main()
