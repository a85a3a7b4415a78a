"""A warning for each URL query parameter a page does not read, so a mistyped or foreign link is never silent.

The Estimate and Plan pages warn about unknown keys through their parsers (app.state.urlstate, app.state.plan_url);
the Compare, Catalog and Accuracy pages read a few keys each and call `warn_unused_params` with them.
"""

from __future__ import annotations

from collections.abc import Collection

import streamlit as st

SHOWN_CHARS = 40
MAX_WARNINGS = 10  # a link with hundreds of junk keys gets ten warnings and a count, not a wall of them


def _clip(text: str) -> str:
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def warn_unused_params(used: Collection[str]) -> None:
    """A warning naming each query parameter not in `used`, which is then dropped from the URL (it had no effect)."""
    unused = [k for k in st.query_params if k not in used and k.strip()]
    reads = ", ".join(f"`{k}`" for k in sorted(used)) or "no parameters"
    for key in unused[:MAX_WARNINGS]:
        st.warning(
            f"URL parameter `{_clip(key)}`: not used on this page, ignored (this page reads {reads}).",
            icon=":material/warning:",
        )
    if len(unused) > MAX_WARNINGS:
        st.warning(f"... and {len(unused) - MAX_WARNINGS} more unused URL parameters.", icon=":material/warning:")
    for key in unused:
        del st.query_params[key]
