"""Save any Altair chart as PNG or SVG: download buttons rendered offline by vl-convert, only when clicked."""

from __future__ import annotations

import altair as alt
import streamlit as st
import vl_convert as vlc

PNG_SCALE = 2  # sharp on high-density screens and in slides


def chart_png(chart: alt.TopLevelMixin) -> bytes:
    return vlc.vegalite_to_png(chart.to_json(), scale=PNG_SCALE)


def chart_svg(chart: alt.TopLevelMixin) -> str:
    return vlc.vegalite_to_svg(chart.to_json())


def show_chart(chart: alt.TopLevelMixin, name: str, key: str, *, stretch: bool = True) -> None:
    """The chart, then "PNG" and "SVG" buttons that download it as `llmcap-<name>.png/.svg`."""
    st.altair_chart(chart, width="stretch" if stretch else "content", key=f"{key}_chart")
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
