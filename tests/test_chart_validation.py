"""Charts are checked against the Vega-Lite schema in the tests (and only there): a spec that breaks the schema fails
here instead of reaching a served page, which skips the check for speed."""

from __future__ import annotations

import os

import altair as alt
import pandas as pd
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
