"""Charts are checked against the Vega-Lite schema in the tests (and only there): a spec that breaks the schema fails
here instead of reaching a served page, which skips the check for speed."""

from __future__ import annotations

import json
import os

import altair as alt
import pandas as pd
import polars as pl
import pytest
from jsonschema import ValidationError

from llmcap.app.chart_export import VALIDATE_ENV, vega_lite_spec


def test_the_suite_validates_charts():
    assert os.environ.get(VALIDATE_ENV) == "1"


def test_a_chart_that_breaks_the_schema_fails_when_validated(monkeypatch):
    with alt.utils.schemapi.debug_mode(False):  # as on a served page: no check while the chart is built
        bad = alt.Chart(pd.DataFrame({"x": [1]})).mark_point().encode(x=alt.X("x:Q", scale=alt.Scale(type="bent")))
    with pytest.raises(ValidationError):
        vega_lite_spec(bad)
    monkeypatch.setenv(VALIDATE_ENV, "0")
    assert vega_lite_spec(bad)["encoding"]["x"]["scale"]["type"] == "bent"  # served pages skip the check


def test_a_dict_chart_that_breaks_the_schema_fails_when_validated(monkeypatch):
    from llmcap.app.vega import channel, layer, layered

    bad = layered({"d": pl.DataFrame({"x": [1.0]})}, [layer("d", "point", x=channel("x:Q", scale={"type": "bent"}))])
    with pytest.raises(ValidationError):
        vega_lite_spec(bad)
    monkeypatch.setenv(VALIDATE_ENV, "0")
    assert vega_lite_spec(bad) is bad  # served pages skip the check and draw the dict as it is


def test_dict_chart_json_has_records_and_no_nan():
    from llmcap.app.vega import channel, layer, layered, spec_json

    spec = layered({"d": pl.DataFrame({"x": [1.0, float("nan"), float("inf")], "k": ["a", "b", "c"]})},
                   [layer("d", "point", x=channel("x:Q"))])  # fmt: skip
    doc = json.loads(spec_json(spec))
    assert doc["datasets"]["d"] == [{"x": 1.0, "k": "a"}, {"x": None, "k": "b"}, {"x": None, "k": "c"}]
    assert doc["layer"][0]["data"] == {"name": "d"}
    assert isinstance(spec["datasets"]["d"], pl.DataFrame)  # the shown spec keeps the frame (sent as Arrow)
