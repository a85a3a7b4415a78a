"""Open each dashboard page in headless chromium: it renders, shows no error, and its downloads work."""

from __future__ import annotations

import csv
from pathlib import Path

from playwright.sync_api import Page, expect

from llmcap.catalog.loader import load_catalog

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
RENDER_TIMEOUT_MS = 60_000


def wait_rendered(page: Page) -> None:
    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning",
                                                         timeout=RENDER_TIMEOUT_MS)  # fmt: skip


def assert_no_errors(page: Page) -> None:
    expect(page.get_by_test_id("stException")).to_have_count(0)
    expect(page.get_by_test_id("stAlertContentError")).to_have_count(0)


def screenshot(page: Page, name: str) -> None:
    """Whole page: Streamlit scrolls inside stMain, so grow the viewport to its height first."""
    height = page.get_by_test_id("stMain").evaluate("e => e.scrollHeight")
    page.set_viewport_size({"width": 1280, "height": max(900, height)})
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / name, full_page=True)


def test_catalog_page(page: Page, tmp_path: Path):
    page.goto("/catalog")
    expect(page.get_by_role("heading", name="Catalog")).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    wait_rendered(page)
    assert_no_errors(page)

    cat = load_catalog()
    metrics = page.get_by_test_id("stMetric")
    expect(metrics.first).to_be_visible()
    expect(metrics.filter(has_text="Hardware").get_by_test_id("stMetricValue")).to_have_text(str(len(cat.hardware)))
    expect(page.get_by_test_id("stDataFrame").first).to_be_visible()

    screenshot(page, "catalog.png")

    with page.expect_download() as info:
        page.get_by_role("button", name="Download hardware CSV").click()
    saved = tmp_path / info.value.suggested_filename
    info.value.save_as(saved)
    assert saved.name == "llmcap-hardware.csv"
    with saved.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert {r["id"] for r in rows} == set(cat.hardware)
    assert all(float(r["memory_gb"]) > 0 and r["source"] for r in rows)
