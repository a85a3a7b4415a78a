"""Save any Altair chart as PNG or SVG: download buttons rendered offline by vl-convert, only when clicked."""

from __future__ import annotations

import os

import altair as alt
import streamlit as st
import vl_convert as vlc

PNG_SCALE = 2  # sharp on high-density screens and in slides


def chart_png(chart: alt.TopLevelMixin) -> bytes:
    return vlc.vegalite_to_png(chart.to_json(), scale=PNG_SCALE)


def chart_svg(chart: alt.TopLevelMixin) -> str:
    return vlc.vegalite_to_svg(chart.to_json())


VALIDATE_ENV = "LLMCAP_VALIDATE_CHARTS"  # "1": check every chart against the Vega-Lite schema (the tests set it)


def vega_lite_spec(chart: alt.TopLevelMixin) -> dict:
    """The chart's Vega-Lite spec, data inline, without Altair's default theme (as st.altair_chart does it).

    Schema validation is on only where $LLMCAP_VALIDATE_CHARTS is 1: the test suite sets it (tests/conftest.py), so
    every chart a page draws in a test is validated, while a served page skips it (it was about a third of a rerun's
    server time, bench/page_rerun.py)."""
    with alt.theme.enable("none"):
        return chart.to_dict(validate=os.environ.get(VALIDATE_ENV) == "1")


def show_chart(chart: alt.TopLevelMixin, name: str, key: str, *, stretch: bool = True) -> None:
    """The chart, then "PNG" and "SVG" buttons that download it as `llmcap-<name>.png/.svg`."""
    st.vega_lite_chart(spec=vega_lite_spec(chart), width="stretch" if stretch else "content", key=f"{key}_chart")
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
