"""Data checks for the formats, prices, workloads and carbon catalogs.

These files are loaded directly (yaml.safe_load + the schema classes) rather than through
llmcap.catalog.loader.load_catalog, so they can be checked independently of the hardware and model catalogs.
"""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
import yaml

from llmcap.catalog.loader import normalize_id
from llmcap.catalog.schema import (
    MATH_TYPES,
    CarbonIntensity,
    CloudOffering,
    Format,
    KVFormat,
    MathFallback,
    PurchasePrice,
    Workload,
)

CATALOGS = Path(__file__).resolve().parent.parent / "catalogs"

# Device ids the hardware catalog defines (agreed list); prices may only refer to these.
DATACENTER_IDS = {
    "b300-sxm", "gb300", "b200-sxm", "gb200", "h200-sxm", "h100-sxm", "h100-pcie", "h800-sxm", "h20",
    "gh200", "gh200-144gb", "a100-sxm-80gb", "a100-sxm-40gb", "a100-pcie-80gb", "l40s", "l40", "l4", "a40",
    "a10g", "a10", "t4", "v100-sxm-32gb", "rtx-pro-6000-blackwell", "rtx-6000-ada", "rtx-5090", "rtx-4090",
    "rtx-3090", "mi355x", "mi325x", "mi300x", "mi250x", "tpu-v5e", "tpu-v5p", "tpu-v6e", "gaudi2", "gaudi3",
    "trainium2", "inferentia2", "ascend-910b", "ascend-910c",
}  # fmt: skip
CONSUMER_AND_EDGE_IDS = {
    "m2-ultra-76c", "m3-ultra-80c", "jetson-orin-nano-8gb-super", "raspberry-pi-5-16gb", "jetson-agx-orin-64gb",
}  # fmt: skip

# Catalog ids cannot contain "_" (schema ID_PATTERN); llama.cpp names are stored with "-" and looked up
# through llmcap.catalog.loader.normalize_id, which maps "_" to "-" (q8_0 -> q8-0).
GGUF_NAMES = ("q8_0", "q5_0", "q4_0", "q4_k_m", "q3_k_s")
GGUF_FORMATS = {normalize_id(n) for n in GGUF_NAMES}
REQUIRED_FORMATS = {
    "bf16", "fp16", "fp32", "fp8", "fp8-block", "int8", "int8-wo", "int4", "nvfp4", "mxfp4", "w4a8",
} | GGUF_FORMATS  # fmt: skip
REQUIRED_KV = {"bf16", "fp16", "fp8", "int8", "int4"}
REQUIRED_WORKLOADS = {"chat", "rag", "code-completion", "summarization", "reasoning", "agentic"}
REQUIRED_PROVIDERS = {"AWS", "GCP", "Azure", "OCI"}

# Hand-checked bits per weight from the GGML block layouts (ggml/src/ggml-common.h):
# block_q8_0 = fp16 scale (2 bytes) + 32 int8 (32 bytes) = 34 bytes per 32 weights -> 34 * 8 / 32 = 8.5
Q8_0_BITS = 34 * 8 / 32
# block_q4_0 = fp16 scale (2 bytes) + 32 nibbles (16 bytes) = 18 bytes per 32 weights -> 18 * 8 / 32 = 4.5
Q4_0_BITS = 18 * 8 / 32
# block_q5_0 = fp16 scale (2) + 32 high bits (4) + 32 nibbles (16) = 22 bytes per 32 weights -> 5.5
Q5_0_BITS = 22 * 8 / 32

# Cloud offerings whose instance price legitimately differs from devices x per-device price by more than
# 2% (e.g. the instance price includes something the per-device price does not). None at present: every
# row of cloud_prices.csv agrees within rounding, and rows without an instance price were filled in as
# devices x per-device price (their notes say so).
PRICE_CONSISTENCY_EXCEPTIONS: set[str] = set()


def _load(rel: str):
    return yaml.safe_load((CATALOGS / rel).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def formats_doc() -> dict:
    doc = _load("formats.yaml")
    assert isinstance(doc, dict)
    assert set(doc) == {"formats", "kv_formats", "math_fallback"}
    return doc


@pytest.fixture(scope="module")
def formats(formats_doc) -> dict[str, Format]:
    return _index([Format.model_validate(x) for x in formats_doc["formats"]])


@pytest.fixture(scope="module")
def kv_formats(formats_doc) -> dict[str, KVFormat]:
    return _index([KVFormat.model_validate(x) for x in formats_doc["kv_formats"]])


@pytest.fixture(scope="module")
def fallbacks(formats_doc) -> dict[str, MathFallback]:
    entries = [MathFallback.model_validate(x) for x in formats_doc["math_fallback"]]
    counts = collections.Counter(e.math for e in entries)
    assert not [m for m, n in counts.items() if n > 1], "duplicate math_fallback entries"
    return {e.math: e for e in entries}


@pytest.fixture(scope="module")
def cloud() -> list[CloudOffering]:
    data = _load("prices/cloud.yaml")
    assert isinstance(data, list)
    return [CloudOffering.model_validate(x) for x in data]


@pytest.fixture(scope="module")
def purchase() -> list[PurchasePrice]:
    data = _load("prices/purchase.yaml")
    assert isinstance(data, list)
    return [PurchasePrice.model_validate(x) for x in data]


@pytest.fixture(scope="module")
def workloads() -> dict[str, Workload]:
    data = _load("workloads.yaml")
    assert isinstance(data, list)
    return _index([Workload.model_validate(x) for x in data])


@pytest.fixture(scope="module")
def carbon() -> dict[str, CarbonIntensity]:
    data = _load("carbon.yaml")
    assert isinstance(data, list)
    return _index([CarbonIntensity.model_validate(x) for x in data])


def _index(entries):
    ids = [e.id for e in entries]
    dups = [i for i, n in collections.Counter(ids).items() if n > 1]
    assert not dups, f"duplicate ids: {dups}"
    return {e.id: e for e in entries}


# -- formats ---------------------------------------------------------------------------------------


def test_required_formats_present(formats):
    assert set(formats) >= REQUIRED_FORMATS, sorted(REQUIRED_FORMATS - set(formats))


def test_required_kv_formats_present(kv_formats):
    assert set(kv_formats) >= REQUIRED_KV, sorted(REQUIRED_KV - set(kv_formats))


def test_kv_default_is_a_kv_format(formats, kv_formats):
    bad = {f.id: f.kv_default for f in formats.values() if f.kv_default not in kv_formats}
    assert not bad


def test_gguf_names_resolve_to_catalog_ids(formats):
    for name in GGUF_NAMES:
        assert normalize_id(name) in formats, name
        assert normalize_id(name.upper()) in formats, name


def test_gguf_bits_from_block_layout(formats):
    assert formats[normalize_id("q8_0")].weight_bits == Q8_0_BITS == 8.5
    assert formats[normalize_id("q4_0")].weight_bits == Q4_0_BITS == 4.5
    assert formats[normalize_id("q5_0")].weight_bits == Q5_0_BITS == 5.5


def test_gguf_formats_are_llama_cpp_only(formats):
    for fid in GGUF_FORMATS:
        assert formats[fid].engines == ["llama.cpp"], fid
        assert formats[fid].kv_default == "fp16", fid  # llama.cpp --cache-type-k/v default f16
    for fid in REQUIRED_FORMATS - GGUF_FORMATS:
        assert formats[fid].engines is None, fid


def test_format_math_and_bits_are_consistent(formats):
    expected_math = {
        "fp32": "fp32", "bf16": "bf16", "fp16": "bf16", "fp8": "fp8", "fp8-block": "fp8", "int8": "int8",
        "int8-wo": "bf16", "int4": "bf16", "nvfp4": "fp4", "mxfp4": "fp4", "w4a8": "fp8",
    }  # fmt: skip
    for fid, math in expected_math.items():
        assert formats[fid].math == math, fid
    for fid in GGUF_FORMATS:
        assert formats[fid].math == "bf16", fid
    # block-scale overheads: NVFP4 = 4 + 8/16, MXFP4 = 4 + 8/32
    assert formats["nvfp4"].weight_bits == pytest.approx(4 + 8 / 16)
    assert formats["mxfp4"].weight_bits == pytest.approx(4 + 8 / 32)
    # int4 group 128: between scale-only (4.125) and fp16 scale + fp16 zero (4.25)
    assert 4 + 16 / 128 <= formats["int4"].weight_bits <= 4 + 32 / 128
    # weight-only formats keep 16-bit activations
    for fid in ("int8-wo", "int4", *GGUF_FORMATS):
        assert formats[fid].activation_bits == 16, fid
    # nothing is stored below its nominal width or above 16 bits except fp32
    for f in formats.values():
        assert f.weight_bits <= 16 or f.id == "fp32", f.id


def test_math_fallback_covers_every_math_type(fallbacks):
    assert set(fallbacks) == set(MATH_TYPES)
    assert fallbacks["fp32"].then == []
    for math, fb in fallbacks.items():
        if math == "fp32":
            continue
        assert fb.then, math
        assert fb.then[-1] == "fp32", math
        assert math not in fb.then, math
        assert len(set(fb.then)) == len(fb.then), math


# -- cloud prices -----------------------------------------------------------------------------------


def test_cloud_offering_count_and_providers(cloud):
    assert len(cloud) >= 20
    providers = {c.provider for c in cloud}
    assert len(providers) >= 4
    assert providers >= REQUIRED_PROVIDERS, sorted(REQUIRED_PROVIDERS - providers)


def test_cloud_ids_unique(cloud):
    _index(cloud)


def test_cloud_hardware_ids_known(cloud):
    unknown = {c.id: c.hardware for c in cloud if c.hardware not in DATACENTER_IDS}
    assert not unknown


def test_cloud_device_price_times_devices_matches_instance_price(cloud):
    bad = {}
    for c in cloud:
        if c.id in PRICE_CONSISTENCY_EXCEPTIONS:
            continue
        implied = c.usd_per_device_hour * c.devices_per_instance
        if abs(implied - c.usd_per_hour) > 0.02 * c.usd_per_hour:
            bad[c.id] = (implied, c.usd_per_hour)
    assert not bad


def test_cloud_current_offer_exists_for_major_gpus(cloud):
    current = {c.hardware for c in cloud if not c.superseded}
    assert {"h100-sxm", "h200-sxm", "b200-sxm", "a100-sxm-80gb", "l40s", "l4"} <= current


def test_cloud_component_only_rows_say_so(cloud):
    for c in cloud:
        if "component" in c.instance.lower():
            assert "component only" in c.notes.lower() or "gpu component" in c.notes.lower(), c.id


# -- purchase prices --------------------------------------------------------------------------------


def test_purchase_prices(purchase):
    assert len(purchase) >= 10
    unknown = [p.hardware for p in purchase if p.hardware not in DATACENTER_IDS | CONSUMER_AND_EDGE_IDS]
    assert not unknown
    kinds = {p.kind for p in purchase}
    assert kinds == {"list", "street"}
    for p in purchase:
        if p.hardware.startswith(("m2-ultra", "m3-ultra")):
            assert "whole computer" in p.notes.lower(), p.hardware


# -- workloads --------------------------------------------------------------------------------------


def test_required_workloads_present(workloads):
    assert len(workloads) >= 6
    assert set(workloads) >= REQUIRED_WORKLOADS, sorted(REQUIRED_WORKLOADS - set(workloads))


def test_workload_lengths_are_ordered(workloads):
    for w in workloads.values():
        for name, dist in (("input", w.input_tokens), ("output", w.output_tokens)):
            assert dist.min <= dist.mean <= dist.max, (w.id, name)


def test_workload_shapes_differ_as_described(workloads):
    assert workloads["reasoning"].output_tokens.mean > 5 * workloads["chat"].output_tokens.mean
    assert workloads["rag"].input_tokens.mean > workloads["chat"].input_tokens.mean
    assert workloads["code-completion"].output_tokens.mean < workloads["chat"].output_tokens.mean
    assert workloads["agentic"].prefix_cache_hit > 0.5
    assert workloads["agentic"].input_tokens.mean > workloads["rag"].input_tokens.mean


# -- carbon -----------------------------------------------------------------------------------------


def test_carbon_regions(carbon):
    assert len(carbon) >= 12
    assert "world" in carbon
    for c in carbon.values():
        assert 0 <= c.gco2e_per_kwh < 1500, c.id
        assert 2015 <= c.year <= 2026, c.id
