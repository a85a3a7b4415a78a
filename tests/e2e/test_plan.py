"""The Plan page in headless chromium: a shared link plans, its CSV equals llmcap.plan.planner.plan, a new request shows
the progress bar and rewrites the URL, a row's Estimate link opens that scenario, bad values warn; screenshot kept."""

from __future__ import annotations

import csv
import re
import urllib.parse
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from test_pages import RENDER_TIMEOUT_MS, assert_no_errors, screenshot, wait_rendered

from llmcap.app.state.plan_url import PlanInputs, parse_plan_query, plan_request, whatif_changes
from llmcap.app.state.urlstate import choices_from_catalog
from llmcap.catalog.loader import load_catalog
from llmcap.load.day import preset_profile
from llmcap.plan.autoscale import day_plan
from llmcap.plan.planner import plan
from llmcap.plan.whatif import what_ifs

SHARED = (
    "/plan?model=meta-llama/Llama-3.1-8B-Instruct&isl=1024&osl=256&rate=10&ttft=2000&tpot=100&pct=90&hw=all&disagg=1"
)


def open_plan(page: Page, path: str) -> None:
    page.goto(path)
    expect(page.get_by_role("heading", name="Plan", exact=True)).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    wait_rendered(page)
    expect(page.get_by_test_id("stDataFrame").first).to_be_visible(timeout=RENDER_TIMEOUT_MS)


def core_plan(path: str):
    catalog = load_catalog()
    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(path).query))
    inputs, warnings = parse_plan_query(params, choices_from_catalog(catalog))
    assert warnings == []
    return plan(plan_request(inputs, catalog), catalog)


def download(page: Page, label: str, tmp_path: Path) -> list[dict]:
    with page.expect_download() as info:
        page.get_by_role("button", name=label).click()
    saved = tmp_path / info.value.suggested_filename
    info.value.save_as(saved)
    with saved.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_shared_link_plans_and_its_csv_equals_core(page: Page, tmp_path: Path):
    open_plan(page, SHARED)
    assert_no_errors(page)
    expect(page.get_by_test_id("stAlertContentWarning")).to_have_count(0)
    expect(page.get_by_test_id("stVegaLiteChart").first.locator("canvas, svg").first).to_be_visible()
    assert "disagg=1" in page.evaluate("location.search") and "xbw=20" in page.evaluate("location.search")
    screenshot(page, "plan.png")

    rows = download(page, "Download plan CSV", tmp_path)
    expected = core_plan(SHARED).candidates
    assert len(rows) == len(expected) > 0
    for row, c in zip(rows, expected, strict=True):
        assert (row["hardware"], row["mode"], int(row["devices"]), int(row["replicas"])) == (
            c.hardware, c.mode, c.devices, c.replicas,
        )  # fmt: skip
        assert float(row["usd_per_hour"]) == pytest.approx(c.usd_per_hour)
        assert float(row["tpot_ms_p90"]) == pytest.approx(c.tpot_ms_p90)
    assert [int(r["rank"]) for r in rows] == list(range(1, len(rows) + 1))
    assert [float(r["usd_per_hour"]) for r in rows] == sorted(float(r["usd_per_hour"]) for r in rows)

    # the first row's link, resolved against /plan as the browser does, opens the same scenario in Estimate
    link = next(r["estimate_link"] for r in rows if r["estimate_link"])
    page.goto(urllib.parse.urljoin(page.url, link))
    expect(page.get_by_role("heading", name="Estimate")).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    wait_rendered(page)
    assert_no_errors(page)
    expect(page.get_by_test_id("stAlertContentWarning")).to_have_count(0)
    first = next(r for r in rows if r["estimate_link"])
    expect(page.get_by_role("combobox", name="Hardware")).to_have_value(re.compile(f"^{re.escape(first['hardware'])}:"))
    expect(page.get_by_role("spinbutton", name="Replicas")).to_have_value(first["replicas"])


def test_a_new_request_shows_progress_and_rewrites_the_url(page: Page, tmp_path: Path):
    open_plan(page, "/plan?hw=all&rate=10")
    box = page.get_by_role("spinbutton", name="Request rate (req/s)")
    box.fill("17")
    page.get_by_role("button", name="Plan", exact=True).click()
    # a search over every device takes seconds: the bar is drawn by the planner's progress callback
    expect(page.get_by_test_id("stProgress")).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    page.wait_for_function("() => location.search.includes('rate=17')", timeout=RENDER_TIMEOUT_MS)
    wait_rendered(page)
    expect(page.get_by_test_id("stProgress")).to_have_count(0)
    assert_no_errors(page)
    rows = download(page, "Download plan CSV", tmp_path)
    expected = core_plan("/plan?hw=all&rate=17").candidates
    assert (rows[0]["hardware"], float(rows[0]["usd_per_hour"])) == (
        expected[0].hardware, pytest.approx(expected[0].usd_per_hour),
    )  # fmt: skip
    assert "rate=17" in page.get_by_test_id("stSidebar").get_by_test_id("stCode").inner_text()


def test_bad_values_warn_and_the_page_still_plans(page: Page):
    open_plan(page, "/plan?hw=l4,warp-9000&rate=lots&pct=42")
    assert_no_errors(page)
    warnings = page.get_by_test_id("stAlertContentWarning")
    expect(warnings).to_have_count(3)
    text = " ".join(warnings.all_inner_texts())
    for key in ("hw=warp-9000", "rate=lots", "pct=42"):
        assert key in text, text
    search = page.evaluate("location.search")
    assert "hw=l4&" in search and "rate=10&" in search and "pct=90" in search


DAY = (
    "/plan?model=meta-llama/Llama-3.3-70B-Instruct&isl=1024&osl=256&rate=20&ttft=2000&tpot=100&pct=90"
    "&hw=h100-sxm,h200-sxm,b200-sxm&w=fp8&day=consumer-chat"
)


def test_the_day_view_draws_its_charts_and_its_csv_equals_core(page: Page, tmp_path: Path):
    open_plan(page, DAY)
    heading = page.get_by_role("heading", name="A day of traffic").last
    expect(heading).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    expect(page.get_by_role("button", name="Download plan-day-policies CSV")).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    wait_rendered(page)
    assert_no_errors(page)
    expect(page.get_by_test_id("stAlertContentWarning")).to_have_count(0)
    assert "day=consumer-chat" in page.evaluate("location.search")
    heading.scroll_into_view_if_needed()
    screenshot(page, "plan-day.png")

    rows = download(page, "Download plan-day-policies CSV", tmp_path)
    catalog = load_catalog()
    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(DAY).query))
    inputs, _ = parse_plan_query(params, choices_from_catalog(catalog))
    req = plan_request(inputs, catalog)
    prof = preset_profile("consumer-chat", req.rate_rps)
    day = day_plan(plan(req.model_copy(update={"rate_rps": prof.peak_rate_rps}), catalog), prof, catalog)
    best = day.best()
    assert [r["policy"] for r in rows] == [r.policy for r in best]
    for row, r in zip(rows, best, strict=True):
        assert float(row["usd_per_day"]) == pytest.approx(r.usd_per_day)
        assert float(row["slo_miss_request_share"]) == pytest.approx(r.slo_miss_request_share, abs=1e-12)
    prices = download(page, "Download plan-day-prices CSV", tmp_path)
    assert {p["option"] for p in prices} >= {"on-demand", "spot", "owned", "hosted"}
    expect(page.get_by_role("button", name="Download plan-day-crossover CSV")).to_be_visible()


def test_a_whatif_change_replans_its_section_and_rewrites_the_link(page: Page, tmp_path: Path):
    """The what-ifs sit in a fragment: a new value re-plans that section, and the URL and the sidebar's share link
    take it (the rest of the page is not rerun, so it must not lose them)."""
    path = "/plan?model=meta-llama/Llama-3.1-8B-Instruct&isl=1024&osl=256&rate=10&hw=l4,l40s,h100-sxm&w=fp8"
    open_plan(page, path)
    box = page.get_by_role("spinbutton", name="Bandwidth (%)")
    box.fill("70")
    box.press("Enter")
    page.wait_for_function("() => location.search.includes('xbw=70')", timeout=RENDER_TIMEOUT_MS)
    expect(page.get_by_test_id("stSidebar").get_by_test_id("stCode")).to_contain_text("xbw=70")
    wait_rendered(page)
    assert_no_errors(page)
    rows = download(page, "Download plan-whatifs CSV", tmp_path)
    base = core_plan(path)
    inputs = PlanInputs(hardware=("l4", "l40s", "h100-sxm"), weights=("fp8",), whatif_bw_pct=70)
    expected = what_ifs(base, load_catalog(), whatif_changes(inputs))
    assert [r["what_if"] for r in rows] == ["as planned", *[w.name for w in expected]]
    assert "memory bandwidth +70%" in rows[1]["what_if"]
    for row, w in zip(rows[1:], expected, strict=True):
        assert (row["hardware"], float(row["usd_per_hour"])) == (w.hardware, pytest.approx(w.usd_per_hour))
    expect(page.get_by_role("button", name="Download plan CSV")).to_be_visible()  # the rest of the page stays
