"""The Catalog page under Streamlit's AppTest: no server, no browser."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.catalog import CatalogError, Problem, load_catalog
from core.cli_catalog import TABLES, catalog_counts

APP_DIR = Path(__file__).resolve().parents[1] / "app"
APP = APP_DIR / "streamlit_app.py"


def run_app() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.switch_page("views/catalog.py").run()  # Estimate is the default page
    return at


@pytest.fixture(scope="module")
def at() -> AppTest:
    return run_app()


def test_page_runs_without_errors(at):
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.title[0].value == "Catalog"


def test_metrics_show_catalog_counts(at):
    counts = catalog_counts(load_catalog())
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {label: str(counts[kind]) for kind, (label, _) in TABLES.items()}
    assert metrics["Hardware"] == str(len(load_catalog().hardware))


def test_one_table_and_download_per_catalog(at):
    cat = load_catalog()
    assert [t.label for t in at.tabs] == [label for label, _ in TABLES.values()]
    hardware = at.dataframe[0].value
    assert sorted(hardware["id"]) == sorted(cat.hardware)
    assert "source" in hardware.columns
    labels = [b.label for b in at.get("download_button")]
    assert "Download hardware CSV" in labels


def test_text_and_vendor_filters_narrow_the_hardware_table():
    at = run_app()
    at.text_input(key="hardware_text").set_value("h100-sxm").run()
    assert not at.exception
    ids = list(at.dataframe[0].value["id"])
    assert "h100-sxm" in ids
    assert len(ids) < len(load_catalog().hardware) or len(load_catalog().hardware) == 1

    vendor = load_catalog().device("h100-sxm").vendor
    at.text_input(key="hardware_text").set_value("").run()
    at.multiselect(key="hardware_vendor").set_value([vendor]).run()
    shown = at.dataframe[0].value
    assert set(shown["vendor"]) == {vendor}
    assert len(shown) == sum(d.vendor == vendor for d in load_catalog().hardware.values())


def test_catalog_problems_show_as_an_error_not_a_traceback(monkeypatch):
    sys.path.insert(0, str(APP_DIR))
    try:
        import ui
    finally:
        sys.path.remove(str(APP_DIR))
    problem = Problem("catalogs/hardware/nvidia.yaml", "[h100-sxm].memory_gb", "Input should be greater than 0")

    def broken():
        raise CatalogError([problem])

    monkeypatch.setattr(ui, "load_catalog", broken)
    ui.get_catalog.clear()
    try:
        at = run_app()
    finally:
        ui.get_catalog.clear()
    assert not at.exception
    assert len(at.error) == 1
    assert str(problem) in at.error[0].value
    assert not at.metric
