"""Catalog page: what the catalogs hold, as counts and filterable tables with sources and CSV downloads,
and the user's own devices, models and traces (kept in the session; devices also in the URL as `dev=`)."""

import streamlit as st

from llmcap.app.custom_forms import custom_entries_section
from llmcap.app.custom_state import read_devices_from_url, write_devices_to_url
from llmcap.app.ui import catalog_frame, catalog_or_stop, csv_download, filter_table
from llmcap.app.url_guard import warn_unused_params
from llmcap.catalog.tables import TABLES, catalog_counts

# Columns offered as multiselect filters in each table.
FACETS = {
    "hardware": ("vendor", "kind"),
    "models": ("family", "attention"),
    "formats": ("math",),
    "prices": ("provider", "hardware"),
    "workloads": ("arrival",),
}
UNITS = (
    "Units are in the column names: `_gb` GB, `_gbps` GB/s, `_tflops` dense TFLOP/s, `_tops` dense TOP/s, "
    "`_w` watts, `_usd` US dollars; `params_*_b` are billions of parameters, published or (`_computed`) "
    "counted from the model's config.json. Every entry names its `source`."
)

st.title("Catalog")
st.caption(
    "The hardware, models, formats, prices and workloads every estimate is built from. "
    "`llmcap catalog show ID` prints everything known about one entry."
)

catalog = catalog_or_stop()
read_devices_from_url()
warn_unused_params({"dev"})
counts = catalog_counts(catalog)

for col, (kind, (label, _)) in zip(st.columns(len(TABLES)), TABLES.items(), strict=True):
    col.metric(label, counts[kind], border=True)
st.caption(
    f"Also: {counts['kv_formats']} KV-cache formats, {counts['purchase_prices']} purchase prices, "
    f"{counts['carbon_regions']} grid carbon regions. {UNITS}"
)

for tab, (kind, (label, _)) in zip(st.tabs([label for label, _ in TABLES.values()]), TABLES.items(), strict=True):
    with tab:
        df = catalog_frame(kind)
        if df.is_empty():
            st.info(f"No {label.lower()} in the catalog yet.")
            continue
        view = filter_table(df, key=kind, facets=FACETS.get(kind, ()))
        st.dataframe(
            view,
            hide_index=True,
            placeholder="-",
            column_config={
                "id": st.column_config.TextColumn("id", pinned=True),
                "source": st.column_config.TextColumn("source", width="large"),
            },
        )
        st.caption(f"{view.height} of {df.height} {label.lower()} shown.")
        csv_download(view, kind, key=f"download_{kind}")

st.divider()
custom_entries_section()
write_devices_to_url()
