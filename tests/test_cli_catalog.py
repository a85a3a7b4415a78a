"""`llmcap catalog ...` on the real catalogs, through llmcap.cli.main.main and the installed console script."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from llmcap.catalog.loader import load_catalog
from llmcap.cli.main import main
from llmcap.io.output import render

ALIAS = "meta-llama/Llama-3.1-8B"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def expected_ids(kind: str) -> set[str]:
    cat = load_catalog()
    entries = {
        "hardware": cat.hardware,
        "models": cat.models,
        "formats": cat.formats,
        "prices": cat.cloud_prices,
        "workloads": cat.workloads,
    }[kind]
    return set(entries)


def test_list_hardware_csv_has_id_header_and_every_row_parses(capsys):
    code, out, err = run(capsys, "catalog", "list", "hardware", "--format", "csv")
    assert code == 0, err
    reader = csv.reader(io.StringIO(out))
    header = next(reader)
    assert header[0] == "id"
    assert {"memory_gb", "mem_bw_gbps", "bf16_tflops", "source"} <= set(header)
    rows = list(reader)
    assert all(len(r) == len(header) for r in rows)
    by_id = {r[0]: dict(zip(header, r, strict=True)) for r in rows}
    assert set(by_id) == expected_ids("hardware")
    h100 = by_id["h100-sxm"]
    assert float(h100["memory_gb"]) == load_catalog().device("h100-sxm").memory_gb
    assert all(r["source"] for r in by_id.values())


@pytest.mark.parametrize("kind", ["hardware", "models", "formats", "prices", "workloads"])
def test_list_json_parses_with_ids_and_sources(capsys, kind):
    code, out, err = run(capsys, "catalog", "list", kind, "--format", "json")
    assert code == 0, err
    rows = json.loads(out)
    assert {r["id"] for r in rows} == expected_ids(kind)
    assert all(r["source"] for r in rows)


def test_list_models_carries_published_and_computed_params(capsys):
    code, out, err = run(capsys, "catalog", "list", "models", "--format", "json")
    assert code == 0, err
    cat = load_catalog()
    for row in json.loads(out):
        arch = cat.models[row["id"]].arch
        assert row["params_total_b"] == cat.models[row["id"]].meta.params_total_b
        assert row["params_total_b_computed"] == pytest.approx(arch.params_total / 1e9, abs=1e-3)
        assert row["params_active_b_computed"] <= row["params_total_b_computed"]
        assert row["layers"] == arch.num_layers


def test_list_table_is_aligned(capsys):
    code, out, err = run(capsys, "catalog", "list", "formats")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[0] == "id"
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert len(lines) == 2 + len(expected_ids("formats"))


@pytest.mark.parametrize("wanted", ["h100-sxm", "H100_SXM"])
def test_show_hardware_any_spelling(capsys, wanted):
    code, out, err = run(capsys, "catalog", "show", wanted, "--format", "json")
    assert code == 0, err
    entry = json.loads(out)
    device = load_catalog().device("h100-sxm")
    assert entry["catalog"] == "hardware"
    assert entry["id"] == "h100-sxm"
    assert entry["memory_gb"] == device.memory_gb
    assert entry["source"] == device.source


def test_show_table_lists_fields_and_source(capsys):
    code, out, err = run(capsys, "catalog", "show", "H100_SXM")
    assert code == 0, err
    fields = {line.split()[0] for line in out.splitlines()[2:] if line.strip()}
    assert {"id", "memory_gb", "mem_bw_gbps", "source"} <= fields
    assert "peak_tflops.bf16" in fields


def test_show_model_through_alias(capsys):
    code, out, err = run(capsys, "catalog", "show", ALIAS, "--format", "json")
    assert code == 0, err
    entry = json.loads(out)
    model = load_catalog().model(ALIAS)
    assert entry["catalog"] == "model"
    assert entry["id"] == model.meta.id
    assert entry["params_total_computed"] == model.arch.params_total
    assert entry["architecture"]["num_layers"] == model.arch.num_layers
    assert entry["source"] == model.meta.source


def test_unknown_id_exits_2_with_suggestions(capsys):
    code, out, err = run(capsys, "catalog", "show", "h100-sxmm")
    assert code == 2
    assert out == ""
    assert "did you mean" in err and "h100-sxm" in err
    assert "Traceback" not in err


def test_unknown_catalog_kind_is_a_usage_error(capsys):
    code, _, err = run(capsys, "catalog", "list", "gpus")
    assert code == 2
    assert "invalid choice" in err


def test_validate_real_catalog_is_clean(capsys):
    code, out, err = run(capsys, "catalog", "validate")
    assert code == 0, out + err
    assert "catalog OK" in out
    assert f"{len(load_catalog().hardware)} hardware" in out


def test_csv_neutralizes_formulas_but_not_numbers():
    rows = [{"id": "a", "text": "=HYPERLINK(1)", "neg": "-1.5", "at": "@SUM(A1)", "plus": "+cmd", "n": -2.0}]
    out = render(rows, "csv").splitlines()
    assert out[1] == "a,'=HYPERLINK(1),-1.5,'@SUM(A1),'+cmd,-2.0"


def test_console_script_runs():
    llmcap = Path(sys.executable).parent / "llmcap"
    assert llmcap.exists(), "install the project first (make test does: pip install -e '.[dev]')"
    proc = subprocess.run(
        [str(llmcap), "catalog", "list", "formats", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    assert {r["id"] for r in json.loads(proc.stdout)} == expected_ids("formats")
