"""The Catalog page under Streamlit's AppTest: no server, no browser. Tables, filters, and custom entries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from llmcap.catalog.custom import with_custom
from llmcap.catalog.loader import CatalogError, Problem, load_catalog
from llmcap.catalog.tables import TABLES, catalog_counts
from llmcap.estimate.single import estimate
from llmcap.io.scenario_io import decode_devices, dump_scenario_file, encode_devices
from llmcap.model.hfconfig import parse_config
from llmcap.scenario import Scenario

APP_DIR = Path(__file__).resolve().parents[1] / "app"
APP = APP_DIR / "streamlit_app.py"


def run_app(**params: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    for k, v in params.items():
        at.query_params[k] = v
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
    from llmcap.app import ui

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


# -- custom entries ----------------------------------------------------------------------------------------------------
LLAMA8 = "meta-llama/Llama-3.1-8B-Instruct"
TRACE_CSV = b"timestamp,input_tokens,output_tokens\n0,100,20\n0.5,300,40\n2,200,30\n"


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def uploader(at: AppTest, label: str):
    return next(u for u in at.get("file_uploader") if u.label == label)


def add_device(at: AppTest, base: str, **fields) -> AppTest:
    at.selectbox(key="cdev_base").set_value(base).run()
    for key, value in fields.items():
        widget = at.text_input(key=f"cdev_{key}") if isinstance(value, str) else at.number_input(key=f"cdev_{key}")
        widget.set_value(value)
    return button(at, "Add device").click().run()


def test_custom_device_from_a_catalog_copy_is_held_estimated_and_put_in_the_url():
    at = add_device(run_app(), "h100-sxm", id="my-h100", memory_gb=141.0)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "my-h100" in at.success[0].value
    dev = at.session_state["custom_devices"]["my-h100"]
    h100 = load_catalog().device("h100-sxm")
    assert dev.memory_gb == 141 and dev.mem_bw_gbps == h100.mem_bw_gbps and dev.peak_tflops == h100.peak_tflops
    assert decode_devices(at.query_params["dev"]) == [dev]
    # the same silicon with more memory: same latency, room for more sequences
    scn = Scenario(model=LLAMA8, hardware="h100-sxm", weight_format="fp8", concurrency=8)
    mine = estimate(scn.model_copy(update={"hardware": "my-h100"}), with_custom(load_catalog(), devices={dev.id: dev}))
    ref = estimate(scn)
    assert mine.serving.tpot_ms == pytest.approx(ref.serving.tpot_ms)
    assert mine.memory.max_concurrency > ref.memory.max_concurrency


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"id": "My GPU"}, "id: String should match pattern"),
        ({"id": "h100-sxm"}, "already a catalog device"),
        ({"id": "ok-id", "memory_gb": 0.0}, "memory_gb: Input should be greater than 0"),
        ({"id": "ok-id", "source": ""}, "source"),
    ],
)
def test_bad_custom_device_is_a_clear_error(fields, message):
    at = add_device(run_app(), "l40s", **fields)
    assert not at.exception
    assert message in at.error[0].value
    assert not at.session_state["custom_devices"]


def test_blank_device_without_any_peak_names_the_missing_figures():
    at = add_device(run_app(), "(blank)", id="blank-gpu", memory_gb=16.0, mem_bw_gbps=300.0, source="my lab")
    assert not at.exception
    assert "peak throughput" in at.error[0].value


def test_device_in_the_url_is_loaded_and_a_bad_one_warns():
    mine = load_catalog().device("l4").model_copy(update={"id": "my-l4", "name": "My L4"})
    at = run_app(dev=encode_devices([mine]))
    assert not at.warning
    assert at.session_state["custom_devices"] == {"my-l4": mine}
    assert "my-l4" in at.dataframe[-1].value["id"].tolist()
    at = run_app(dev="not-a-device-list")
    assert not at.exception
    assert "URL parameter `dev`" in at.warning[0].value


def test_config_upload_adds_a_model_and_bad_files_say_why():
    cfg = load_catalog().model(LLAMA8).config_path.read_bytes()
    at = run_app()
    uploader(at, "A model's config.json").set_value(("config.json", cfg, "application/json"))
    at.text_input(key="cmodel_name").set_value("my-org/llama-copy")
    button(at, "Add model").click().run()
    assert not at.exception and not at.error
    arch = at.session_state["custom_models"]["my-org/llama-copy"]
    assert arch == parse_config(json.loads(cfg))
    assert f"{arch.params_total / 1e9:.2f} B parameters" in at.success[0].value

    for data, message in [
        (b"{nope", "is not valid JSON"),
        (b'{"model_type": "llama"}', "cannot be used"),
    ]:
        at = run_app()
        uploader(at, "A model's config.json").set_value(("bad.json", data, "application/json"))
        button(at, "Add model").click().run()
        assert not at.exception
        assert message in at.error[0].value
        assert not at.session_state["custom_models"]


def test_trace_upload_is_summarized_and_a_bad_trace_says_where():
    at = run_app()
    uploader(at, "A request trace (CSV)").set_value(("t.csv", TRACE_CSV, "text/csv")).run()
    assert not at.exception and not at.error
    assert "3 requests" in at.success[0].value
    held = at.dataframe[-1].value
    assert "t.csv" in held["id"].tolist()
    assert "3 requests over 2 s" in held[held["id"] == "t.csv"]["what"].iloc[0]

    at = run_app()
    bad = b"timestamp,input_tokens,output_tokens\n0,100,20\n1,lots,5\n"
    uploader(at, "A request trace (CSV)").set_value(("bad.csv", bad, "text/csv")).run()
    assert not at.exception
    assert "line 3" in at.error[0].value and "input_tokens" in at.error[0].value


def test_scenario_file_loads_custom_entries():
    cfg = json.loads(load_catalog().model(LLAMA8).config_path.read_text())
    mine = load_catalog().device("l4").model_copy(update={"id": "file-l4"})
    text = dump_scenario_file([], {"file-l4": mine}, {"file-llama": parse_config(cfg)})
    at = run_app()
    uploader(at, "Load a scenario file").set_value(("s.json", text.encode(), "application/json")).run()
    assert not at.exception and not at.warning
    assert set(at.session_state["custom_devices"]) == {"file-l4"}
    assert set(at.session_state["custom_models"]) == {"file-llama"}
    uploader(at, "Load a scenario file").set_value(("x.json", b"[]", "application/json")).run()
    assert "not an llmcap scenario file" in at.warning[0].value
