"""The Estimate page in headless chromium: a shared link's KPIs equal `llmcap estimate`, widgets write the URL,
the operator CSV downloads, bad URL values warn instead of failing, and a full-page screenshot is kept."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from test_pages import RENDER_TIMEOUT_MS, assert_no_errors, screenshot, wait_rendered

from llmcap.cli.main import main as llmcap

SHARED = "/?model=meta-llama/Llama-3.1-8B-Instruct&hw=h100-sxm&tp=1&w=fp8&kv=fp8&isl=1024&osl=256&conc=16"
CLI_ARGS = ["estimate", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--hardware", "h100-sxm", "--tp", "1",
            "--weights", "fp8", "--kv", "fp8", "--input-len", "1024", "--output-len", "256"]  # fmt: skip


def cli_estimate(capsys, concurrency: int) -> dict:
    """What `llmcap estimate ... --format json` prints for the shared scenario."""
    capsys.readouterr()
    assert llmcap([*CLI_ARGS, "--concurrency", str(concurrency), "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def tile(page: Page, label: str) -> str:
    metric = page.get_by_test_id("stMetric").filter(
        has=page.get_by_test_id("stMetricLabel").get_by_text(label, exact=True)
    )
    return metric.get_by_test_id("stMetricValue").inner_text().strip()


def assert_tile(text: str, expected: float, unit: str) -> None:
    """The tile shows `expected` to its last printed digit, in `unit` (ms may read as s above 10 s)."""
    m = re.fullmatch(r"([\d,]+(?:\.(\d+))?) (ms|s|tok/s)", text)
    assert m and m.group(3) in ((unit, "s") if unit == "ms" else (unit,)), text
    scale = 1e3 if m.group(3) == "s" and unit == "ms" else 1.0
    value = float(m.group(1).replace(",", "")) * scale
    assert abs(value - expected) <= 0.5 * 10 ** -len(m.group(2) or "") * scale + 1e-9, (text, expected)


def assert_kpis(page: Page, cli: dict) -> None:
    assert tile(page, "Fits") == ("yes" if cli["fits"] else "no")
    assert_tile(tile(page, "TTFT"), cli["serving"]["ttft_ms"], "ms")
    assert_tile(tile(page, "TPOT"), cli["serving"]["tpot_ms"], "ms")
    assert_tile(tile(page, "Output tokens/s"), cli["serving"]["output_tokens_per_s"], "tok/s")
    assert tile(page, "Prefill bound") == cli["prefill"]["bound"]
    assert tile(page, "Decode bound") == cli["decode"]["bound"]
    assert_number(tile(page, "$/million output tokens"), cli["cost"]["usd_per_million_output_tokens"], prefix="$")
    assert_number(tile(page, "J/token"), cli["energy"]["joules_per_output_token"], suffix=" J")


def assert_number(text: str, expected: float, prefix: str = "", suffix: str = "") -> None:
    """A tile such as "$0.1750", "0.090 J" or "33.64 req/s" shows `expected` to its last printed digit."""
    m = re.fullmatch(re.escape(prefix) + r"([\d,]+(?:\.(\d+))?)" + re.escape(suffix), text)
    assert m, (text, prefix, suffix)
    assert abs(float(m.group(1).replace(",", "")) - expected) <= 0.5 * 10 ** -len(m.group(2) or "") + 1e-9, (
        text,
        expected,
    )


RATE = (
    "/?model=meta-llama/Llama-3.1-8B-Instruct&hw=h100-sxm&tp=1&w=fp8&kv=fp8&isl=1024&osl=256&rate=12&arr=gamma&cv=1.41"
)


def cli_rate(capsys, rate: float, method: str) -> dict:
    """What `llmcap estimate ... --rate R --arrival gamma --cv 1.41 --method M --format json` prints."""
    capsys.readouterr()
    args = [*CLI_ARGS, "--rate", f"{rate:g}", "--arrival", "gamma", "--cv", "1.41", "--method", method]
    assert llmcap([*args, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def assert_rate_tiles(page: Page, cli: dict) -> None:
    assert_tile(tile(page, "TTFT p90"), cli["ttft_ms"]["p90"], "ms")
    assert_tile(tile(page, "TPOT p90"), cli["tpot_ms"]["p90"], "ms")
    assert_tile(tile(page, "Output tokens/s"), cli["throughput"]["output_tokens_per_s"], "tok/s")
    assert_number(tile(page, "Goodput"), cli["goodput_rps"], suffix=" req/s")
    assert_number(tile(page, "Max rate"), cli["max_rate_rps"], suffix=" req/s")
    assert_number(tile(page, "SLO attainment"), cli["slo_attainment"] * 100, suffix="%")
    assert_number(tile(page, "$/million output tokens"), cli["cost"]["usd_per_million_output_tokens"], prefix="$")
    assert_number(tile(page, "J/token"), cli["energy"]["joules_per_output_token"], suffix=" J")


def test_rate_link_matches_the_cli_and_the_rate_widget_writes_the_url(page: Page, capsys):
    page.goto(RATE)
    expect(page.get_by_role("heading", name="Estimate")).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    wait_rendered(page)
    assert_no_errors(page)
    expect(page.get_by_test_id("stAlertContentWarning")).to_have_count(0)
    assert_rate_tiles(page, cli_rate(capsys, 12, "analytic"))  # the page's default method
    expect(page.get_by_text("Method: analytic queueing model (llmcap.load.queueing): fast")).to_be_visible()
    for heading in ("Latency at this request rate", "Memory", "Roofline", "Per-operator table"):
        expect(page.get_by_role("heading", name=heading)).to_be_visible()
    screenshot(page, "estimate-rate.png")

    # the simulator on demand: the checkbox writes sim=1 and the tiles follow `llmcap estimate --method simulate`
    page.get_by_text("Simulate each request (slower)").click()
    page.wait_for_function("() => location.search.includes('sim=1')", timeout=RENDER_TIMEOUT_MS)
    expect(page.get_by_text("Method: simulation of each request")).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    wait_rendered(page)
    assert_no_errors(page)
    assert_rate_tiles(page, cli_rate(capsys, 12, "simulate"))
    page.get_by_text("Simulate each request (slower)").click()
    page.wait_for_function("() => location.search.includes('sim=0')", timeout=RENDER_TIMEOUT_MS)
    expect(page.get_by_text("Method: analytic queueing model (llmcap.load.queueing): fast")).to_be_visible(
        timeout=RENDER_TIMEOUT_MS
    )

    page.set_viewport_size({"width": 1280, "height": 900})
    box = page.get_by_role("spinbutton", name="Request rate (req/s)")
    box.fill("20")
    box.press("Enter")
    page.wait_for_function("() => location.search.includes('rate=20')", timeout=RENDER_TIMEOUT_MS)
    wait_rendered(page)
    assert_no_errors(page)
    assert "rate=20" in page.get_by_test_id("stSidebar").get_by_test_id("stCode").inner_text()


@pytest.fixture
def estimate_page(page: Page) -> Page:
    page.goto(SHARED)
    expect(page.get_by_role("heading", name="Estimate")).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    wait_rendered(page)
    expect(page.get_by_test_id("stVegaLiteChart").first.locator("canvas, svg").first).to_be_visible(
        timeout=RENDER_TIMEOUT_MS
    )
    return page


def test_shared_link_matches_the_cli_and_widgets_write_the_url(estimate_page: Page, capsys):
    page = estimate_page
    assert_no_errors(page)
    expect(page.get_by_test_id("stAlertContentWarning")).to_have_count(0)
    assert_kpis(page, cli_estimate(capsys, 16))
    expect(page.get_by_role("combobox", name="Weight format")).to_have_value(re.compile(r"^fp8"))
    assert "n=1" in page.evaluate("location.search")  # the page wrote every input back into the URL

    box = page.get_by_role("spinbutton", name="Concurrency (requests in flight)")
    box.fill("32")
    box.press("Enter")
    page.wait_for_function("() => location.search.includes('conc=32')", timeout=RENDER_TIMEOUT_MS)
    wait_rendered(page)
    assert_kpis(page, cli_estimate(capsys, 32))
    assert "conc=32" in page.get_by_test_id("stSidebar").get_by_test_id("stCode").inner_text()
    assert_no_errors(page)


def test_operator_csv_download(estimate_page: Page, tmp_path: Path, capsys):
    page = estimate_page
    with page.expect_download() as info:
        page.get_by_role("button", name="Download operators CSV").click()
    saved = tmp_path / info.value.suggested_filename
    info.value.save_as(saved)
    assert saved.name == "llmcap-operators.csv"
    with saved.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    expected = cli_estimate(capsys, 16)["operators"]
    assert [(r["phase"], r["operator"]) for r in rows] == [(o["phase"], o["operator"]) for o in expected]
    for got, want in zip(rows, expected, strict=True):
        assert float(got["time_ms"]) == pytest.approx(want["time_ms"], abs=5e-5)
        assert got["bound"] == want["bound"]


def test_screenshot_shows_every_section(estimate_page: Page):
    page = estimate_page
    for heading in ("Memory", "Roofline", "Latency and throughput over concurrency", "Per-operator table"):
        expect(page.get_by_role("heading", name=heading)).to_be_visible()
    expect(page.get_by_test_id("stVegaLiteChart")).to_have_count(4)
    assert_no_errors(page)
    screenshot(page, "estimate.png")


def test_bad_url_values_warn_and_fall_back(page: Page):
    page.goto("/?tp=abc&hw=h100-sx&conc=16")
    expect(page.get_by_role("heading", name="Estimate")).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    wait_rendered(page)
    assert_no_errors(page)
    warnings = page.get_by_test_id("stAlertContentWarning")
    expect(warnings.filter(has_text="tp=abc")).to_have_count(1)
    expect(warnings.filter(has_text="h100-sx")).to_have_count(1)
    page.wait_for_function("() => location.search.includes('tp=1') && location.search.includes('hw=h100-sxm')")
    expect(page.get_by_test_id("stMetric").first).to_be_visible()
