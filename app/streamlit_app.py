"""llmcap dashboard: `streamlit run app/streamlit_app.py` (or `make run`)."""

# Imported before any page runs: Altair reaches pandas through sys.modules, and when two sessions draw
# their first charts at once one of them can find it half-imported ("partially initialized module
# 'pandas' has no attribute 'Timestamp'", seen by bench/load_sessions.py). Importing it here, once, in
# the entry script, settles the import before the sessions' threads race for it.
import altair as alt
import pandas  # noqa: F401
import streamlit as st

# Altair validates every chart object against the Vega-Lite schema as it is built ("debug mode"): about a seventh of
# a rerun (bench/page_rerun.py). Charts are validated once, when serialized, where $LLMCAP_VALIDATE_CHARTS is set
# (the tests: llmcap.app.chart_export.vega_lite_spec).
alt.utils.schemapi.disable_debug_mode()

st.set_page_config(page_title="llmcap", page_icon=":material/memory:", layout="wide")

pages = [
    st.Page("views/estimate.py", title="Estimate", icon=":material/speed:", url_path="estimate", default=True),
    st.Page("views/catalog.py", title="Catalog", icon=":material/inventory_2:", url_path="catalog"),
    st.Page("views/compare.py", title="Compare", icon=":material/compare_arrows:", url_path="compare"),
    st.Page("views/plan.py", title="Plan", icon=":material/route:", url_path="plan"),
    st.Page("views/accuracy.py", title="Accuracy", icon=":material/target:", url_path="accuracy"),
]
st.navigation(pages).run()
