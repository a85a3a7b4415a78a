"""Vega-Lite specs written as plain dicts, for the charts a page redraws on every widget change.

Altair builds an object tree, deep-copies it on every layer and property call and walks it again in to_dict: on the
Estimate page that was most of a rerun's server time (bench/page_rerun.py). A dict costs microseconds. Data go in
the spec's top-level `datasets` as polars frames: Streamlit sends them to the browser as Arrow directly, and
`spec_json` writes them as records for PNG/SVG export and for schema validation.
(Vega-Lite specification: https://vega.github.io/vega-lite/docs/spec.html; named datasets:
https://vega.github.io/vega-lite/docs/data.html#named.)
"""

from __future__ import annotations

import functools
import json
import math

import altair as alt
import polars as pl
from altair.utils.schemapi import validate_jsonschema

Spec = dict
# Fit the width to the container but keep `height` as the plot's own height (Streamlit's default "fit" squeezes
# titles, legends and axes into `height`, which flattens short charts such as the memory bar).
FIT_WIDTH = {"type": "fit-x", "contains": "padding"}
TYPES = {"Q": "quantitative", "N": "nominal", "O": "ordinal", "T": "temporal"}


def channel(shorthand: str, **props) -> dict:
    """One encoding channel from "field:Q" (or "field:N", ...) and its properties (title, scale, format...)."""
    name, _, kind = shorthand.rpartition(":")
    return {"field": name, "type": TYPES[kind], **props}


def layer(name: str, mark: str | dict, **encoding) -> dict:
    """One layer drawing the named dataset with `mark` (a type or a mark dict) and its channels."""
    return {"data": {"name": name}, "mark": {"type": mark} if isinstance(mark, str) else mark, "encoding": encoding}


def layered(datasets: dict[str, pl.DataFrame], layers: list[dict], **props) -> Spec:
    """A layered chart over named datasets, fitted to the container's width."""
    return {"$schema": alt.SCHEMA_URL, "datasets": datasets, "layer": layers, "autosize": FIT_WIDTH, **props}


def _records(frame: pl.DataFrame) -> list[dict]:
    """A frame as JSON records, NaN and infinities as null (JSON has neither)."""
    return [{k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}
            for row in frame.to_dicts()]  # fmt: skip


def jsonable(spec: Spec) -> dict:
    """The spec with its datasets as records (what vl-convert and the schema take)."""
    data = spec.get("datasets") or {}
    return {**spec, "datasets": {k: _records(v) if isinstance(v, pl.DataFrame) else v for k, v in data.items()}}


def spec_json(spec: Spec) -> str:
    return json.dumps(jsonable(spec), allow_nan=False)


@functools.cache
def _schema() -> dict:
    return alt.vegalite.v6.schema.core.load_schema()


def validate(spec: Spec) -> None:
    """Raise jsonschema's ValidationError where the spec breaks the Vega-Lite schema."""
    validate_jsonschema(jsonable(spec), _schema())
