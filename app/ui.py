"""Helpers shared by the dashboard pages: the cached catalog, its tables, filters and downloads, the URL state.

Pages import it as `llmcap.app.ui` (one module object, so its caches are shared by every page).
Which facts each table shows is decided in the library (llmcap.catalog.tables), not here.
"""

from __future__ import annotations

import functools
import urllib.parse
from collections.abc import Callable, Sequence

import polars as pl
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from llmcap.app.state.urlstate import PASSTHROUGH_KEYS
from llmcap.catalog.custom import with_custom
from llmcap.catalog.loader import Catalog, CatalogError, load_catalog
from llmcap.catalog.schema import Device
from llmcap.catalog.tables import catalog_rows
from llmcap.economics.operating_point import PointCosts, closed_loop_costs
from llmcap.estimate.curve import concurrency_curve, concurrency_levels
from llmcap.estimate.single import Estimate, estimate
from llmcap.io.output import csv_safe, to_frame
from llmcap.load.rate import LoadEstimate, assemble, not_fit
from llmcap.load.rate_prepare import Prepared, prepare
from llmcap.load.rate_simulate import Simulated, goodput, max_rate, operating_point
from llmcap.load.simulate import SimResult
from llmcap.load.trace import Trace
from llmcap.model.architecture import Architecture
from llmcap.scenario import Pricing, Scenario, Slo, Traffic

MAX_PROBLEMS_SHOWN = 50


@st.cache_resource(show_spinner="Loading catalogs...")
def get_catalog() -> Catalog:
    """The validated catalog, read once per server process."""
    return load_catalog()


@st.cache_resource(show_spinner=False)
def catalog_frame(kind: str) -> pl.DataFrame:
    """One catalog table ("hardware", "models", ...) as a polars DataFrame."""
    return to_frame(catalog_rows(get_catalog(), kind))


def catalog_or_stop() -> Catalog:
    """The catalog; when it does not validate, an error listing every problem, and the page stops."""
    try:
        return get_catalog()
    except CatalogError as exc:
        lines = [f"- `{str(p).replace('`', chr(39))}`" for p in exc.problems[:MAX_PROBLEMS_SHOWN]]
        if len(exc.problems) > MAX_PROBLEMS_SHOWN:
            lines.append(f"- ... and {len(exc.problems) - MAX_PROBLEMS_SHOWN} more")
        st.error(
            f"The catalogs have {len(exc.problems)} problem(s), so nothing can be shown. "
            "Fix them (`llmcap catalog validate` lists the same) and reload.\n\n" + "\n".join(lines)
        )
        st.stop()


def filter_table(df: pl.DataFrame, key: str, facets: Sequence[str] = ()) -> pl.DataFrame:
    """A text box (matches any column) and one multiselect per facet column; returns the matching rows."""
    facets = [f for f in facets if f in df.columns]
    cols = st.columns([2] + [1] * len(facets))
    text = cols[0].text_input("Filter", key=f"{key}_text", placeholder="text in any column")
    out = df
    needle = (text or "").strip().lower()
    if needle and df.width:
        hit = pl.any_horizontal(
            pl.col(c).cast(pl.String).str.to_lowercase().str.contains(needle, literal=True).fill_null(False)
            for c in df.columns
        )
        out = out.filter(hit)
    for col, facet in zip(cols[1:], facets, strict=True):
        options = sorted(df[facet].drop_nulls().unique().to_list())
        chosen = col.multiselect(facet.replace("_", " ").capitalize(), options, key=f"{key}_{facet}")
        if chosen:
            out = out.filter(pl.col(facet).is_in(chosen))
    return out


def csv_download(df: pl.DataFrame, name: str, key: str) -> None:
    """A CSV download of `df`, with formula-looking text neutralized like the CLI's CSV; written only when clicked
    (writing every table's CSV on every rerun cost the Plan page about 15 ms, bench/page_rerun.py)."""
    st.download_button(
        f"Download {name} CSV",
        data=lambda: csv_safe(df).write_csv(),
        file_name=f"llmcap-{name}.csv",
        mime="text/csv",
        key=key,
        on_click="ignore",
        icon=":material/download:",
    )


# -- URL state: each page parses and writes its own keys (state.urlstate, state.plan_url); these move them ----------


def sync_from_url(last_key: str, parse: Callable[[dict], tuple], push: Callable[[object], None]) -> list[str]:
    """When the URL is not the query the page last wrote (under `last_key`: a first visit, a pasted link), parse it
    and push the inputs into the widgets; coming back from another page (which clears the query string)
    restores the last inputs instead. `parse(query) -> (inputs, warnings)`. Returns the warnings to show."""
    current = {k: st.query_params.get_all(k) for k in st.query_params if k not in PASSTHROUGH_KEYS}
    current = {k: v[-1] if len(v) == 1 else v for k, v in current.items()}
    last = st.session_state.get(last_key)
    if last is not None and current == last:
        return []
    if not current and last is not None:
        current = last
    inputs, warnings = parse(current)
    push(inputs)
    return [str(w) for w in warnings]


def write_query(query: dict[str, str], last_key: str) -> dict[str, str]:
    """Put the page's query in the URL (keeping PASSTHROUGH_KEYS) when it changed, remember it under `last_key`;
    returns the URL's query."""
    keep = {k: st.query_params[k] for k in PASSTHROUGH_KEYS if k in st.query_params}
    if {k: st.query_params.get(k) for k in st.query_params} != query | keep:
        st.query_params.from_dict(query | keep)
    st.session_state[last_key] = query
    return query | keep


def share_link(query: dict[str, str], path: str) -> DeltaGenerator:
    """The page's link with every input (`path` when Streamlit does not know the page's URL) in the sidebar; returns
    the link's slot, which a fragment rewrites with share_code when inputs it holds change."""
    st.sidebar.subheader("Share")
    slot = st.sidebar.empty()
    share_code(slot, query, path)
    st.sidebar.caption("Every input on the page is in this link; the copy button is at its top right.")
    return slot


def share_code(slot: DeltaGenerator, query: dict[str, str], path: str) -> None:
    """The link with `query` in `slot` (replacing what was there)."""
    slot.code(f"{st.context.url or path}?{urllib.parse.urlencode(query)}", language=None, wrap_lines=True)


@st.cache_data(show_spinner=False, max_entries=512)
def cached_estimate(scenario_json: str, arch_json: str | None = None, device_json: str | None = None) -> Estimate:
    """llmcap.estimate.single for a scenario (as JSON, the cache key), with an optional custom model or device.

    Raises what core raises (ValueError, KeyError) for ids or combinations it cannot resolve.
    """
    return estimate(Scenario.model_validate_json(scenario_json), custom_catalog(scenario_json, arch_json, device_json))


@st.cache_data(show_spinner=False, max_entries=256)
def cached_curve(
    scenario_json: str, max_concurrency: int, current: int | None, arch_json: str | None = None,
    device_json: str | None = None,
) -> pl.DataFrame:  # fmt: skip
    """llmcap.estimate.curve's latency-throughput points from concurrency 1 to `max_concurrency` (and `current`)."""
    levels = concurrency_levels(max_concurrency, current)
    scn = Scenario.model_validate_json(scenario_json)
    return concurrency_curve(scn, levels, custom_catalog(scenario_json, arch_json, device_json))


def custom_catalog(scenario_json: str, arch_json: str | None, device_json: str | None) -> Catalog:
    """The catalog with the scenario's custom model (named as the scenario's model) or device added
    (llmcap.catalog.custom.with_custom, the one way custom entries reach the library)."""
    if not arch_json and not device_json:
        return get_catalog()
    return _with_custom(Scenario.model_validate_json(scenario_json).model, arch_json, device_json)


@functools.lru_cache(maxsize=64)
def _with_custom(model: str, arch_json: str | None, device_json: str | None) -> Catalog:
    device = Device.model_validate_json(device_json) if device_json else None
    return with_custom(
        get_catalog(),
        devices={device.id: device} if device is not None else None,
        models={model: Architecture.model_validate_json(arch_json)} if arch_json else None,
    )


# -- open loop: each simulation cached on what it depends on, so a new rate re-runs only the operating point --


@st.cache_resource(show_spinner=False, max_entries=16)
def _prepared(
    scn_json: str, traffic_json: str, trace_key: str | None, arch_json, device_json, _trace, method: str = "simulate"
) -> Prepared:  # fmt: skip
    traffic = Traffic.model_validate_json(traffic_json)
    return prepare(
        Scenario.model_validate_json(scn_json), traffic, method=method, trace=_trace,
        catalog=custom_catalog(scn_json, arch_json, device_json),
    )  # fmt: skip


@st.cache_resource(show_spinner=False, max_entries=256)
def _analytic_load(
    scn_json: str, base_json: str, rate: float, slo_json: str, pricing_json: str, region: str, trace_key,
    arch_json, device_json, _trace,
) -> LoadEstimate:  # fmt: skip
    """The whole analytic estimate (immutable, a few ms to build): the load curve is cached in _prepared."""
    prep = _prepared(scn_json, base_json, trace_key, arch_json, device_json, _trace, method="analytic")
    return assemble(
        prep, rate, Slo.model_validate_json(slo_json), Pricing.model_validate_json(pricing_json), region,
        catalog=custom_catalog(scn_json, arch_json, device_json), strict=False,
    )  # fmt: skip


def _base(traffic_json: str) -> str:
    """The traffic with its rate set to 1 (kept None for a replay): what the request draw (made at 1 req/s),
    the step table and the searches depend on."""
    spec = Traffic.model_validate_json(traffic_json)
    return spec.model_copy(update={"rate_rps": None if spec.rate_rps is None else 1.0}).model_dump_json()


@st.cache_data(show_spinner=False, max_entries=64)
def _max_rate(scn_json: str, base_json: str, trace_key, arch_json, device_json, _trace) -> float:
    return max_rate(_prepared(scn_json, base_json, trace_key, arch_json, device_json, _trace, method="simulate"))


@st.cache_data(show_spinner=False, max_entries=128)
def _goodput(scn_json: str, base_json: str, slo_json: str, trace_key, arch_json, device_json, _trace) -> float:
    prep = _prepared(scn_json, base_json, trace_key, arch_json, device_json, _trace, method="simulate")
    top = _max_rate(scn_json, base_json, trace_key, arch_json, device_json, _trace)
    return goodput(prep, Slo.model_validate_json(slo_json), top)


@st.cache_data(show_spinner=False, max_entries=128)
def _operating(scn_json: str, base_json: str, rate: float, trace_key, arch_json, device_json, _trace) -> SimResult:
    return operating_point(
        _prepared(scn_json, base_json, trace_key, arch_json, device_json, _trace, method="simulate"), rate
    )


def cached_load(
    scenario_json: str, traffic_json: str, slo_json: str, pricing_json: str, region: str,
    arch_json: str | None = None, device_json: str | None = None, trace: Trace | None = None,
    trace_key: str | None = None, method: str = "simulate",
) -> LoadEstimate:  # fmt: skip
    """llmcap.load.rate.estimate_load by `method`, its parts cached separately (same numbers as one estimate_load call):
    the simulator's three simulations, or the analytic model's load curve and result.

    A price that cannot be found is a note (cost None), not an error. Raises what core raises otherwise.
    """
    base = _base(traffic_json)
    keys = (trace_key, arch_json, device_json, trace)
    prep = _prepared(scenario_json, base, *keys, method=method)
    traffic, slo = Traffic.model_validate_json(traffic_json), Slo.model_validate_json(slo_json)
    rate = traffic.rate_rps if traffic.rate_rps is not None else prep.default_rate_rps
    if not prep.fits:
        return not_fit(prep, slo, rate)
    if method == "analytic":
        return _analytic_load(scenario_json, base, rate, slo_json, pricing_json, region, *keys)
    top = _max_rate(scenario_json, base, *keys)
    good = _goodput(scenario_json, base, slo_json, *keys)
    sim = _operating(scenario_json, base, rate, *keys)
    return assemble(
        prep, rate, slo, Pricing.model_validate_json(pricing_json), region, simulated=Simulated(sim, top, good),
        catalog=custom_catalog(scenario_json, arch_json, device_json), strict=False,
    )  # fmt: skip


@st.cache_data(show_spinner=False, max_entries=256)
def cached_closed_costs(
    scenario_json: str, pricing_json: str, region: str, arch_json: str | None = None, device_json: str | None = None
) -> PointCosts | None:
    """Cost and energy of the closed-loop estimate at its throughput (llmcap.economics.operating_point)."""
    est = cached_estimate(scenario_json, arch_json, device_json)
    return closed_loop_costs(
        est, Pricing.model_validate_json(pricing_json), region,
        catalog=custom_catalog(scenario_json, arch_json, device_json), strict=False,
    )  # fmt: skip
