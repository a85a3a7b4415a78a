"""Checks of the hardware catalog (catalogs/hardware/*.yaml).

The YAML files are read directly with yaml.safe_load + llmcap.catalog.schema.Device, so these tests do not depend
on the other catalogs. Facts are spot-checked against the shared reference table when it is present.
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

import pytest
import yaml

from llmcap.catalog.schema import Device

REPO = Path(__file__).resolve().parents[1]
HARDWARE_DIR = REPO / "catalogs" / "hardware"
REFERENCE_CSV = Path(__file__).resolve().parents[2] / "shared" / "reference" / "hardware_specs.csv"

REQUIRED_IDS = [
    "b300-sxm",
    "gb300",
    "b200-sxm",
    "gb200",
    "h200-sxm",
    "h100-sxm",
    "h100-pcie",
    "h800-sxm",
    "h20",
    "gh200",
    "a100-sxm-80gb",
    "a100-sxm-40gb",
    "a100-pcie-80gb",
    "l40s",
    "l40",
    "l4",
    "a40",
    "a10g",
    "a10",
    "t4",
    "v100-sxm-32gb",
    "rtx-pro-6000-blackwell",
    "rtx-6000-ada",
    "rtx-5090",
    "rtx-4090",
    "rtx-3090",
    "mi355x",
    "mi325x",
    "mi300x",
    "mi250x",
    "tpu-v5e",
    "tpu-v5p",
    "tpu-v6e",
    "gaudi2",
    "gaudi3",
    "trainium2",
    "inferentia2",
    "ascend-910b",
    "ascend-910c",
    "m1-max-32c",
    "m2-max-38c",
    "m2-ultra-76c",
    "m3-max-40c",
    "m3-ultra-80c",
    "m4-pro-20c",
    "m4-max-40c",
    "jetson-agx-thor",
    "jetson-agx-orin-64gb",
    "jetson-orin-nano-8gb-super",
    "raspberry-pi-5-16gb",
    "snapdragon-8-gen-3",
    "dimensity-9300",
    "xeon-8480",
    "epyc-9654",
    "graviton4",
    "core-i9-13900k",
    "ryzen-9-7950x",
    "ampereone-a192",
    "apple-m2-max-cpu",
]

# Ampere and older NVIDIA parts: no FP8 tensor math.
NO_FP8_IDS = [
    "a100-sxm-80gb",
    "a100-sxm-40gb",
    "a100-pcie-80gb",
    "a10",
    "a10g",
    "a40",
    "t4",
    "v100-sxm-32gb",
    "rtx-3090",
]
# FP4 tensor math exists only on Blackwell parts and on CDNA4 (MI355X).
FP4_ALLOWED = {
    "b200-sxm",
    "b300-sxm",
    "gb200",
    "gb300",
    "rtx-5090",
    "rtx-pro-6000-blackwell",
    "jetson-agx-thor",
    "mi355x",
}

# FP4 tensor math: NVIDIA Blackwell (datacenter sm100, RTX/workstation sm120, Thor) and AMD CDNA4 only.
FP4_ARCHS = {"blackwell", "blackwell-rtx", "blackwell-thor", "cdna4"}

CSV_PEAK_COLUMNS = {
    "fp32": "fp32_tflops",
    "bf16": "bf16_dense_tflops",
    "fp8": "fp8_dense_tflops",
    "int8": "int8_dense_tops",
    "fp4": "fp4_dense_tflops",
    "int4": "int4_dense_tops",
}


def _files() -> list[Path]:
    return sorted(HARDWARE_DIR.glob("*.yaml"))


@cache
def _raw_entries() -> tuple[tuple[str, dict], ...]:
    out = []
    for path in _files():
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert isinstance(doc, list), f"{path.name}: top level must be a list of devices"
        out += [(path.name, entry) for entry in doc]
    return tuple(out)


@cache
def _devices() -> dict[str, Device]:
    devices: dict[str, Device] = {}
    for _, entry in _raw_entries():
        device = Device.model_validate(entry)
        devices.setdefault(device.id, device)
    return devices


@cache
def _reference_rows() -> dict[str, dict[str, str]]:
    if not REFERENCE_CSV.exists():
        pytest.skip(f"reference table not found at {REFERENCE_CSV}")
    with REFERENCE_CSV.open(newline="", encoding="utf-8") as fh:
        return {row["name"]: row for row in csv.DictReader(fh)}


def _num(text: str) -> float | None:
    text = text.strip()
    return float(text) if text else None


def test_there_are_vendor_files():
    names = {p.name for p in _files()}
    assert {"nvidia.yaml", "amd.yaml", "google.yaml", "aws.yaml", "intel.yaml", "apple.yaml"} <= names


@pytest.mark.parametrize("path", _files(), ids=lambda p: p.name)
def test_every_file_validates(path: Path):
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(doc, list) and doc, f"{path.name} must be a non-empty list"
    for entry in doc:
        Device.model_validate(entry)


def test_ids_unique():
    ids = [entry["id"] for _, entry in _raw_entries()]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicates, f"duplicate ids: {duplicates}"


def test_required_ids_present():
    missing = sorted(set(REQUIRED_IDS) - set(_devices()))
    assert not missing, f"missing ids: {missing}"


def test_at_least_110_devices():
    assert len(_devices()) >= 110


def test_every_device_names_its_architecture():
    missing = [d.id for d in _devices().values() if not d.arch]
    assert not missing, f"no arch: {missing}"


APPLE_VARIANTS = [  # every M1-M4 chip by GPU core count (issue 13)
    "m1-7c", "m1-8c", "m1-pro-14c", "m1-pro-16c", "m1-max-24c", "m1-max-32c", "m1-ultra-48c", "m1-ultra-64c",
    "m2-8c", "m2-10c", "m2-pro-16c", "m2-pro-19c", "m2-max-30c", "m2-max-38c", "m2-ultra-60c", "m2-ultra-76c",
    "m3-8c", "m3-10c", "m3-pro-14c", "m3-pro-18c", "m3-max-30c", "m3-max-40c", "m3-ultra-60c", "m3-ultra-80c",
    "m4-8c", "m4-10c", "m4-pro-16c", "m4-pro-20c", "m4-max-32c", "m4-max-40c",
]  # fmt: skip


def test_every_apple_chip_variant_is_there():
    missing = [i for i in APPLE_VARIANTS if i not in _devices()]
    assert not missing, missing
    assert all(_devices()[i].arch == f"apple-{i.split('-')[0]}" for i in APPLE_VARIANTS)


def test_sources_non_empty():
    for device in _devices().values():
        assert device.source.strip() and len(device.source.strip()) >= 10, device.id
        for field, text in {**device.field_sources, **device.estimated}.items():
            assert text.strip(), f"{device.id}: empty reasoning/source for {field}"


def test_estimated_and_field_sources_keys_are_device_fields():
    fields = set(Device.model_fields)
    for device in _devices().values():
        for key in (*device.field_sources, *device.estimated):
            assert key in fields, f"{device.id}: '{key}' is not a Device field"
            assert key not in {"id", "source", "field_sources", "estimated", "notes"}, f"{device.id}: {key}"


def test_estimated_fields_are_set():
    for device in _devices().values():
        for key in device.estimated:
            assert getattr(device, key) is not None, f"{device.id}: '{key}' is marked estimated but empty"


def test_no_fp8_on_ampere_or_older_nvidia():
    devices = _devices()
    for device_id in NO_FP8_IDS:
        assert "fp8" not in devices[device_id].peak_tflops, device_id
    for device in devices.values():
        if device.vendor == "NVIDIA" and device.arch in {"volta", "turing", "ampere"}:
            assert "fp8" not in device.peak_tflops, device.id


def test_fp4_only_where_native():
    devices = _devices()
    assert "fp4" in devices["b200-sxm"].peak_tflops
    assert set(devices) >= FP4_ALLOWED
    for device in devices.values():
        if "fp4" in device.peak_tflops:
            assert device.arch in FP4_ARCHS, f"{device.id} has fp4 but is not Blackwell/CDNA4 ({device.arch})"


def test_ada_parts_have_fp8():
    devices = _devices()
    for device_id in ["l4", "l40", "l40s", "rtx-4090", "rtx-6000-ada"]:
        assert "fp8" in devices[device_id].peak_tflops, device_id


def test_kinds():
    devices = _devices()
    assert devices["apple-m2-max-cpu"].kind == "cpu"
    for device_id in ["xeon-8480", "epyc-9654", "graviton4", "core-i9-13900k", "ryzen-9-7950x", "ampereone-a192"]:
        assert devices[device_id].kind == "cpu", device_id
    for device_id in ["m1-max-32c", "m2-max-38c", "m2-ultra-76c", "m3-max-40c", "m3-ultra-80c", "m4-pro-20c"]:
        assert devices[device_id].kind == "apple_soc", device_id
    for device_id in ["jetson-agx-thor", "raspberry-pi-5-16gb", "snapdragon-8-gen-3", "dimensity-9300"]:
        assert devices[device_id].kind == "edge", device_id
    for device_id in ["tpu-v5e", "gaudi3", "trainium2", "inferentia2", "ascend-910b"]:
        assert devices[device_id].kind == "accelerator", device_id
    for device_id in ["rtx-4090", "rtx-5090", "rtx-pro-6000-blackwell", "rtx-6000-ada"]:
        assert devices[device_id].kind == "consumer_gpu", device_id


def test_apple_gpu_usable_memory_below_total():
    for device in _devices().values():
        if device.kind == "apple_soc":
            assert device.usable_memory_gb is not None, device.id
            assert device.usable_memory_gb < device.memory_gb, device.id


def test_gh200_is_the_96gb_part():
    devices = _devices()
    assert devices["gh200"].memory_gb == 96
    assert devices["gh200-144gb"].memory_gb == 144


def test_spot_checks_against_reference():
    rows = _reference_rows()
    devices = _devices()
    h100 = rows["NVIDIA H100 SXM (80GB)"]
    assert devices["h100-sxm"].memory_gb == _num(h100["memory_gb"]) == 80
    assert devices["h100-sxm"].mem_bw_gbps == _num(h100["memory_bw_gbps"]) == 3350
    assert devices["h100-sxm"].peak_tflops["bf16"] == _num(h100["bf16_dense_tflops"])
    assert devices["mi300x"].memory_gb == _num(rows["AMD Instinct MI300X"]["memory_gb"]) == 192
    assert devices["b200-sxm"].peak_tflops["fp4"] == _num(rows["NVIDIA B200 (SXM)"]["fp4_dense_tflops"])
    assert devices["tpu-v6e"].mem_bw_gbps == _num(rows["Google TPU v6e (Trillium)"]["memory_bw_gbps"])
    assert devices["rtx-4090"].peak_tflops["fp8"] == _num(rows["NVIDIA GeForce RTX 4090"]["fp8_dense_tflops"])


def test_entries_named_like_reference_rows_match_it():
    """Where an entry carries a reference row's exact name, memory, bandwidth and peaks must agree with it."""
    rows = _reference_rows()
    checked = 0
    for device in _devices().values():
        row = rows.get(device.name)
        if row is None:
            continue
        checked += 1
        for column, value in (("memory_gb", device.memory_gb), ("memory_bw_gbps", device.mem_bw_gbps)):
            expected = _num(row[column])
            if expected is not None:
                assert value == pytest.approx(expected), f"{device.id}.{column}"
        for math, column in CSV_PEAK_COLUMNS.items():
            expected = _num(row[column])
            if expected is not None and math in device.peak_tflops:
                assert device.peak_tflops[math] == pytest.approx(expected), f"{device.id}.peak_tflops.{math}"
    assert checked >= 40


def test_driver_reported_memory_applies_only_to_its_own_size():
    # nvidia-smi: an H100 SXM "80GB" reports 81,559 MiB = 85.52e9 bytes
    from llmcap.catalog.loader import load_catalog
    from llmcap.perf.shapes import driver_memory_gb

    h100 = load_catalog().device("h100-sxm")
    assert driver_memory_gb(h100) == pytest.approx(81559 * 2**20 / 1e9)
    # a copy edited to another size (custom device) falls back to its own memory_gb
    assert driver_memory_gb(h100.model_copy(update={"memory_gb": 160.0})) == 160.0
    plain = next(d for d in load_catalog().hardware.values() if d.reported_memory_mib is None)
    assert driver_memory_gb(plain) == plain.memory_gb
    # nvidia-smi: a B200 "180GB" reports 183,359 MiB = 192.3e9 bytes
    assert driver_memory_gb(load_catalog().device("b200-sxm")) == pytest.approx(183359 * 2**20 / 1e9)
