"""validate_catalog() and `llmcap catalog validate` on a copy of the real catalogs with one thing broken."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmcap.catalog.loader import CATALOG_DIR, CatalogError, Problem, load_catalog, validate_catalog
from llmcap.cli.main import main

DEVICE = "h100-sxm"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A private copy of catalogs/ (named catalogs/, so problems name files as for the real one)."""
    dst = tmp_path / "catalogs"
    shutil.copytree(CATALOG_DIR, dst)
    return dst


def device_file(root: Path, device_id: str = DEVICE) -> Path:
    for path in sorted((root / "hardware").glob("*.yaml")):
        entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        if any(isinstance(e, dict) and e.get("id") == device_id for e in entries):
            return path
    raise AssertionError(f"{device_id} is in no catalogs/hardware/*.yaml")


def edit_yaml(path: Path, change: Callable[[Any], Any]) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data = change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def edit_device(root: Path, change: Callable[[dict], None]) -> str:
    """Apply `change` to the h100-sxm entry; returns the file name problems should cite."""
    path = device_file(root)

    def apply(entries: list[dict]) -> list[dict]:
        change(next(e for e in entries if e.get("id") == DEVICE))
        return entries

    edit_yaml(path, apply)
    return f"catalogs/hardware/{path.name}"


def find(problems: list[Problem], file: str, field: str) -> Problem:
    hits = [p for p in problems if p.file == file and p.field == field]
    assert hits, f"no problem for {file}: {field} in {[str(p) for p in problems]}"
    return hits[0]


def test_copy_of_real_catalog_is_clean(root):
    assert validate_catalog(root) == []


def test_bad_field_names_file_entry_field_and_reason(root):
    file = edit_device(root, lambda d: d.update(memory_gb=-1))
    problem = find(validate_catalog(root), file, f"[{DEVICE}].memory_gb")
    assert "greater than 0" in problem.reason
    assert str(problem).startswith(f"{file}: [{DEVICE}].memory_gb: ")
    with pytest.raises(CatalogError) as exc:
        load_catalog(root)
    assert problem in exc.value.problems


def test_malformed_yaml(root):
    path = device_file(root)
    path.write_text(path.read_text(encoding="utf-8") + "\n- id: [unclosed\n", encoding="utf-8")
    problem = find(validate_catalog(root), f"catalogs/hardware/{path.name}", "-")
    assert problem.reason.startswith("cannot read YAML")


def test_unknown_extra_key(root):
    file = edit_device(root, lambda d: d.update(colour="green"))
    problem = find(validate_catalog(root), file, f"[{DEVICE}].colour")
    assert "extra" in problem.reason.lower()


def test_duplicate_id(root):
    path = device_file(root)
    edit_yaml(path, lambda entries: [*entries, next(e for e in entries if e["id"] == DEVICE)])
    problems = [p for p in validate_catalog(root) if p.field == f"[{DEVICE}]"]
    assert problems and problems[0].reason == "duplicate id"
    assert "hardware" in problems[0].file


def test_cloud_price_naming_unknown_hardware(root):
    offer = {
        "id": "test-offer-unknown-gpu",
        "provider": "Test",
        "instance": "t1.xlarge",
        "hardware": "no-such-gpu",
        "devices_per_instance": 1,
        "usd_per_hour": 1.0,
        "usd_per_device_hour": 1.0,
        "region": "nowhere",
        "date_seen": "2026-11-01",
        "source": "test fixture",
    }
    cloud = root / "prices" / "cloud.yaml"
    if cloud.exists():
        edit_yaml(cloud, lambda entries: [*(entries or []), offer])
    else:
        cloud.parent.mkdir(exist_ok=True)
        cloud.write_text(yaml.safe_dump([offer], sort_keys=False), encoding="utf-8")
    problem = find(validate_catalog(root), "catalogs/prices/cloud.yaml", "[test-offer-unknown-gpu].hardware")
    assert "unknown hardware 'no-such-gpu'" in problem.reason


def test_cli_validate_reports_problems_and_fails(root, capsys):
    file = edit_device(root, lambda d: d.update(memory_gb=-1))
    code = main(["catalog", "validate", "--root", str(root)])
    out, err = capsys.readouterr()
    assert code != 0
    assert f"{file}: [{DEVICE}].memory_gb: " in out
    assert "problem(s)" in err


def test_cli_validate_clean_copy_prints_counts(root, capsys):
    code = main(["catalog", "validate", "--root", str(root)])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "catalog OK" in out and "hardware" in out


def test_catalog_facts_must_be_finite():
    import math

    from pydantic import ValidationError

    from llmcap.catalog.loader import load_catalog

    d = load_catalog().device("h100-sxm")
    for bad in (math.inf, math.nan):
        with pytest.raises(ValidationError, match="finite"):
            type(d).model_validate({**d.model_dump(), "mem_bw_gbps": bad})


# -- the side files (day profiles, price options, start-up times, offload tiers) -------------------------


def test_cli_validate_reports_a_broken_side_file_by_name_field_and_line(root, capsys):
    path = root / "offload.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("read_gbps: 7.45", "read_gbps: -1"), encoding="utf-8")
    line = next(i for i, s in enumerate(text.splitlines(), 1) if s.strip().startswith("read_gbps:"))
    code = main(["catalog", "validate", "--root", str(root)])
    out, err = capsys.readouterr()
    assert code == 1
    assert f"catalogs/offload.yaml: ssd.read_gbps (line {line}): Input should be greater than 0" in out
    assert "1 problem(s) in 1 file(s)" in err


def test_cli_validate_reports_yaml_syntax_of_a_side_file_with_line_and_column(root, capsys):
    path = root / "prices" / "options.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join([*lines, "broken: [1, 2"]) + "\n", encoding="utf-8")
    code = main(["catalog", "validate", "--root", str(root)])
    out, _ = capsys.readouterr()
    assert code == 1
    # the unclosed flow sequence is found at the end of the stream, the line after the last one written
    assert f"catalogs/prices/options.yaml: line {len(lines) + 2} column 1: YAML syntax" in out


def test_cli_validate_reports_a_bad_day_profile_entry_and_a_missing_side_file(root, capsys):
    edit_yaml(root / "day_profiles.yaml", lambda rows: [{**rows[0], "shape": [1.0] * 23}, *rows[1:]])
    (root / "startup.yaml").unlink()
    code = main(["catalog", "validate", "--root", str(root)])
    out, err = capsys.readouterr()
    assert code == 1
    assert "catalogs/day_profiles.yaml: 0.shape (line " in out and "at least 24 items" in out
    assert "catalogs/startup.yaml: -: file missing" in out
    assert "in 2 file(s)" in err


def test_side_file_check_is_empty_for_the_real_files():
    from llmcap.catalog.loader import check_catalog_file
    from llmcap.cli.catalog import SIDE_FILES

    assert len(SIDE_FILES) >= 4
    for name, parse in SIDE_FILES:
        assert check_catalog_file(CATALOG_DIR, name, parse) == [], name
