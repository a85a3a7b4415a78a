"""Show a chart and save it as PNG or SVG: download buttons rendered offline by vl-convert, only when clicked.

A chart is an Altair chart or a Vega-Lite dict (llmcap.app.vega, for the charts redrawn on every widget change)."""

from __future__ import annotations

import os
from collections.abc import Callable

import altair as alt
import streamlit as st
import vl_convert as vlc

from llmcap.app.vega import Spec, spec_json, validate

PNG_SCALE = 2  # sharp on high-density screens and in slides
Chart = alt.TopLevelMixin | Spec


def _json(chart: Chart) -> str:
    return spec_json(chart) if isinstance(chart, dict) else chart.to_json()


def chart_png(chart: Chart) -> bytes:
    return vlc.vegalite_to_png(_json(chart), scale=PNG_SCALE)


def chart_svg(chart: Chart) -> str:
    return vlc.vegalite_to_svg(_json(chart))


VALIDATE_ENV = "LLMCAP_VALIDATE_CHARTS"  # "1": check every chart against the Vega-Lite schema (the tests set it)


def vega_lite_spec(chart: Chart) -> dict:
    """The chart's Vega-Lite spec, data inline, without Altair's default theme (as st.altair_chart does it).

    Schema validation is on only where $LLMCAP_VALIDATE_CHARTS is 1: the test suite sets it (tests/conftest.py), so
    every chart a page draws in a test is validated, while a served page skips it (it was about a third of a rerun's
    server time, bench/page_rerun.py)."""
    check = os.environ.get(VALIDATE_ENV) == "1"
    if isinstance(chart, dict):
        if check:
            validate(chart)
        return chart
    with alt.theme.enable("none"):
        return chart.to_dict(validate=check)


@st.cache_resource(max_entries=256, show_spinner=False)
def _built(cache_key: str, _build: Callable[[], alt.TopLevelMixin]) -> tuple[alt.TopLevelMixin, dict]:
    """The chart `_build()` makes and its spec, kept per process for `cache_key` (shared by the sessions: both are
    only read, and st.vega_lite_chart copies the spec before it changes it)."""
    chart = _build()
    return chart, vega_lite_spec(chart)


def show_cached_chart(
    build: Callable[[], alt.TopLevelMixin], cache_key: str, name: str, key: str, *, stretch: bool = True
) -> None:
    """show_chart for an Altair chart that `cache_key` determines (a string naming every input of `build`): a rerun
    with the same inputs reuses the chart and its spec instead of building them again (Altair's object tree and
    to_dict were most of the Estimate page's rerun time, bench/page_rerun.py)."""
    chart, spec = _built(f"{name}|{cache_key}", build)
    show_chart(chart, name, key, stretch=stretch, spec=spec)


def show_chart(chart: Chart, name: str, key: str, *, stretch: bool = True, spec: dict | None = None) -> None:
    """The chart (drawn from `spec` when given: its vega_lite_spec), then "PNG" and "SVG" buttons that download it
    as `llmcap-<name>.png/.svg`."""
    spec = vega_lite_spec(chart) if spec is None else spec
    st.vega_lite_chart(spec=spec, width="stretch" if stretch else "content", key=f"{key}_chart")
    row = st.container(horizontal=True, gap="small")
    for ext, render, mime in (("png", chart_png, "image/png"), ("svg", chart_svg, "image/svg+xml")):
        row.download_button(
            ext.upper(),
            data=lambda render=render: render(chart),
            file_name=f"llmcap-{name}.{ext}",
            mime=mime,
            key=f"{key}_{ext}",
            on_click="ignore",
            icon=":material/image:",
            type="tertiary",
            help=f"Save this chart as {ext.upper()}",
        )
