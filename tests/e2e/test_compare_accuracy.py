"""Compare, Accuracy and the Catalog's custom entries in headless chromium: render, no error, downloads parse."""

from __future__ import annotations

import csv
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Page, expect

from llmcap.calibration.measured import default_data
from llmcap.calibration.validate import compare, summarize
from llmcap.catalog.loader import load_catalog
from llmcap.estimate.bands import cross_validation
from llmcap.estimate.single import estimate
from llmcap.io.scenario_io import decode_devices, decode_scenarios, encode_scenarios
from llmcap.scenario import Scenario

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
RENDER_TIMEOUT_MS = 60_000
LLAMA8 = "meta-llama/Llama-3.1-8B-Instruct"
SCENARIOS = [
    Scenario(model=LLAMA8, hardware="h100-sxm", weight_format="fp8", kv_format="fp8", engine="vllm", concurrency=16),
    Scenario(model=LLAMA8, hardware="h200-sxm", engine="vllm", concurrency=16),
    Scenario(model="Qwen/Qwen3-32B", hardware="h100-sxm", tp=2, engine="sglang", concurrency=32),
]


def wait_rendered(page: Page) -> None:
    app = page.get_by_test_id("stApp")
    expect(app).to_have_attribute("data-test-script-state", "notRunning", timeout=RENDER_TIMEOUT_MS)


def assert_no_errors(page: Page) -> None:
    expect(page.get_by_test_id("stException")).to_have_count(0)
    expect(page.get_by_test_id("stAlertContentError")).to_have_count(0)


def screenshot(page: Page, name: str) -> None:
    """Whole page: Streamlit scrolls inside stMain, so grow the viewport to its height first."""
    height = page.get_by_test_id("stMain").evaluate("e => e.scrollHeight")
    page.set_viewport_size({"width": 1280, "height": max(900, height)})
    page.wait_for_timeout(500)  # charts re-lay out to the new viewport
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / name, full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def download(page: Page, name: str, tmp_path: Path) -> Path:
    with page.expect_download() as info:
        page.get_by_role("button", name=name, exact=True).first.click()
    saved = tmp_path / info.value.suggested_filename
    info.value.save_as(saved)
    return saved


def query(page: Page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def test_compare_page(page: Page, tmp_path: Path):
    page.goto(f"/compare?cmp={encode_scenarios(SCENARIOS)}&vary=tp&vals=1,2,4")
    expect(page.get_by_role("heading", name="Compare")).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    wait_rendered(page)
    assert_no_errors(page)
    expect(page.get_by_test_id("stVegaLiteChart")).to_have_count(4)  # bars, memory, vary lines, per answer
    expect(page.get_by_test_id("stVegaLiteChart").last.locator("canvas, svg").first).to_be_visible()
    assert decode_scenarios(query(page)["cmp"]) == (SCENARIOS, [])
    screenshot(page, "compare.png")

    saved = download(page, "Download compare CSV", tmp_path)
    assert saved.name == "llmcap-compare.csv"
    with saved.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3
    cat = load_catalog()
    for row, scn in zip(rows, SCENARIOS, strict=True):
        est = estimate(scn, cat)
        assert row["status"] == "ok"
        assert float(row["ttft_ms"]) == pytest.approx(est.serving.ttft_ms, rel=1e-6)
        assert float(row["output_tokens_per_s_per_device"]) == pytest.approx(
            est.serving.output_tokens_per_s_per_device, rel=1e-6
        )

    png = download(page, "PNG", tmp_path)
    assert png.suffix == ".png" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # a widget change reaches the URL
    page.get_by_test_id("stSidebar").get_by_role("spinbutton", name="Output").first.fill("512")
    page.keyboard.press("Enter")
    page.wait_for_function("() => new URLSearchParams(location.search).get('cmp').includes(',512')")
    wait_rendered(page)
    assert decode_scenarios(query(page)["cmp"])[0][0].output_len == 512
    assert_no_errors(page)


def test_compare_per_answer_view(page: Page, tmp_path: Path):
    ans = "Qwen/Qwen3-8B@h100-sxm:samples=8;Qwen/Qwen3-32B@h100-sxm:weights=fp8;Qwen/Qwen3-8B@h100-sxm"
    page.goto(f"/compare?ans={ans}&ansrate=0.5&ansmax=8000")
    expect(page.get_by_role("heading", name="Per answer: a small model sampled N times, or a large model once")
           ).to_be_visible(timeout=RENDER_TIMEOUT_MS)  # fmt: skip
    wait_rendered(page)
    assert_no_errors(page)
    expect(page.get_by_test_id("stVegaLiteChart").last.locator("canvas, svg").first).to_be_visible()
    assert query(page)["ans"] == ans and query(page)["ansmax"] == "8000"
    heading = page.get_by_role("heading", name="Per answer: a small model sampled N times, or a large model once")
    heading.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "compare-per-answer.png", full_page=False)
    screenshot(page, "compare-with-answers.png")
    saved = download(page, "Download per-answer CSV", tmp_path)
    with saved.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["samples"] for r in rows] == ["8", "1", "1"] and all(r["status"] == "ok" for r in rows)
    one, eight = float(rows[2]["usd_per_answer_at_max_rate"]), float(rows[0]["usd_per_answer_at_max_rate"])
    assert one < eight <= 8 * one

    # a widget change reaches the URL
    page.get_by_role("spinbutton", name="Answers/s").fill("2")
    page.keyboard.press("Enter")
    page.wait_for_function("() => new URLSearchParams(location.search).get('ansrate') === '2'")
    wait_rendered(page)
    assert_no_errors(page)


def test_accuracy_page(page: Page, tmp_path: Path):
    page.goto("/accuracy")
    expect(page.get_by_role("heading", name="Accuracy")).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    wait_rendered(page)
    assert_no_errors(page)
    rows, _ = compare(default_data())
    overall = {r["metric"]: r for r in summarize(rows, "metric")}
    tile = page.get_by_test_id("stMetric").filter(has_text="TPOT MAPE").get_by_test_id("stMetricValue")
    expect(tile).to_have_text(f"{overall['tpot_ms']['mape_pct']:.1f}%")
    cv = {r["metric"]: r for r in cross_validation()["summary"] if r["slice"] == "metric"}
    held_out = page.get_by_test_id("stMetric").filter(has_text="TPOT, model held out")
    expect(held_out.get_by_test_id("stMetricValue")).to_have_text(f"{cv['tpot_ms']['mape_lomo']:.1f}%")
    expect(page.get_by_test_id("stVegaLiteChart").first.locator("canvas, svg").first).to_be_visible()
    screenshot(page, "accuracy.png")

    saved = download(page, "Download accuracy-points CSV", tmp_path)
    with saved.open(newline="", encoding="utf-8") as f:
        points = list(csv.DictReader(f))
    assert len(points) == len(rows)
    compared = [p for p in points if p["predicted"]]
    assert len(compared) == sum(r.error is not None for r in rows)
    assert all(float(p["measured"]) > 0 for p in compared)


def test_catalog_custom_device_and_model(page: Page):
    page.goto("/catalog")
    expect(page.get_by_role("heading", name="Your own entries")).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    wait_rendered(page)
    page.get_by_role("combobox", name="Start from").click()
    page.keyboard.type("h100-sxm")  # the option list is virtualized: filter it first
    page.get_by_role("option", name="h100-sxm", exact=True).click()
    expect(page.get_by_role("textbox", name="Id")).to_have_value("h100-sxm-custom")  # the copy has arrived
    page.get_by_role("textbox", name="Id").fill("my-h100-141gb")
    page.get_by_role("spinbutton", name="Memory (GB)").fill("141")
    page.get_by_role("button", name="Add device").click()
    expect(page.get_by_text("Added device my-h100-141gb")).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    page.wait_for_function("() => new URLSearchParams(location.search).has('dev')")
    (dev,) = decode_devices(query(page)["dev"])
    assert dev.id == "my-h100-141gb" and dev.memory_gb == 141

    cfg = load_catalog().model(LLAMA8).config_path
    page.get_by_test_id("stFileUploader").filter(has_text="config.json").locator("input[type=file]").set_input_files(
        cfg
    )
    page.get_by_role("textbox", name="Name").last.fill("my-org/llama-copy")
    page.get_by_role("button", name="Add model").click()
    expect(page.get_by_text("Added model my-org/llama-copy")).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    wait_rendered(page)
    assert_no_errors(page)
    screenshot(page, "catalog-custom.png")
