"""The Accuracy page under AppTest: its figures are `llmcap validate`'s, and it renders its chart and tables."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from llmcap.calibration.measured import default_data
from llmcap.calibration.validate import compare, summarize, worst
from llmcap.estimate.bands import cross_validation

APP = Path(__file__).resolve().parents[1] / "app" / "streamlit_app.py"


@pytest.fixture(scope="module")
def validated():
    rows, _ = compare(default_data())
    return rows


@pytest.fixture(scope="module")
def at() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.switch_page("views/accuracy.py").run()
    return at


def test_page_runs_without_errors(at):
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error and not at.warning
    assert at.title[0].value == "Accuracy"


def test_tiles_equal_validate(at, validated):
    overall = {r["metric"]: r for r in summarize(validated, "metric")}
    tiles = {m.label: m.value for m in at.metric}
    assert tiles["TTFT MAPE"] == f"{overall['ttft_ms']['mape_pct']:.1f}%"
    assert tiles["TPOT MAPE"] == f"{overall['tpot_ms']['mape_pct']:.1f}%"
    assert tiles["TPOT within ±25%"] == f"{overall['tpot_ms']['within_25_pct']:.0f}%"
    assert tiles["Values compared"] == f"{sum(r.error is not None for r in validated):,}"


def test_tables_equal_validate(at, validated):
    # first the out-of-sample figures stored with the error bands (llmcap validate --cv --write), then in sample
    cv = cross_validation()
    assert list(at.dataframe[0].value["mape_lomo"]) == [r["mape_lomo"] for r in cv["summary"]]
    assert len(at.dataframe[1].value) == len(cv["coverage"])
    assert any("model held out" in m.label for m in at.metric)
    by_class = at.dataframe[2].value
    expected = summarize(validated, "device_class")
    assert list(by_class["mape_pct"]) == [r["mape_pct"] for r in expected]
    assert set(by_class["device_class"]) >= {"datacenter_gpu"}
    by_engine = at.dataframe[3].value
    assert list(by_engine["engine"]) == [r["engine"] for r in summarize(validated, "engine")]
    worst_rows = at.dataframe[6].value
    assert list(worst_rows["id"]) == [r["id"] for r in worst(validated, 15)]
    points = at.dataframe[7].value
    assert len(points) == len(validated)


def test_scatter_shows_the_chosen_metrics(validated):
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.switch_page("views/accuracy.py").run()

    def points_in_chart() -> int:
        chart = at.get("vega_lite_chart")[0]
        sizes = [pa.ipc.open_stream(d.data.data).read_all().num_rows for d in chart.proto.datasets]
        return sum(s for s in sizes if s != 50)  # the y = x reference line has 50 points

    both = sum(r.error is not None and r.m.metric in ("ttft_ms", "tpot_ms") for r in validated)
    assert points_in_chart() == both
    at.multiselect(key="acc_metrics").set_value(["output_tokens_per_s"]).run()
    assert not at.exception
    assert points_in_chart() == sum(r.error is not None and r.m.metric == "output_tokens_per_s" for r in validated)
    at.selectbox(key="acc_color").set_value("hardware").run()
    assert not at.exception
