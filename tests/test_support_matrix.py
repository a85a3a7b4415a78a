"""The engine support matrix (catalogs/support.yaml, llmcap.catalog.support).

Devices are built with the Device model from a few catalog entries that exist (h100-sxm, b200-sxm, mi300x,
m3-ultra-80c, a100-sxm-80gb, rtx-5090), with `arch` set here so the tests do not depend on the hardware catalog's
arch field, which other work edits.
"""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from llmcap.catalog.loader import CATALOG_DIR, load_catalog
from llmcap.catalog.schema import Device
from llmcap.catalog.support import (
    GENERIC,
    SupportMatrix,
    SupportRule,
    check_support,
    matrix_problems,
    supported_engines,
    supported_formats,
)

ARCHS = {
    "h100-sxm": "hopper",
    "b200-sxm": "blackwell",
    "mi300x": "cdna3",
    "m3-ultra-80c": "apple-m3",
    "a100-sxm-80gb": "ampere",
    "rtx-5090": "blackwell-rtx",
}
GGUF = ("q8-0", "q5-0", "q4-0", "q4-k-m", "q3-k-s")
MLX_FORMATS = ("mlx-q3", "mlx-q4", "mlx-q6", "mlx-q8")


@pytest.fixture(scope="module")
def matrix() -> SupportMatrix:
    return load_catalog().support  # support.yaml with the engines' labels from engines.yaml


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.fixture(scope="module")
def dev(catalog):
    def make(device_id: str) -> Device:
        return catalog.hardware[device_id].model_copy(update={"arch": ARCHS[device_id]})

    return make


# -- the data -------------------------------------------------------------------------------------------


def test_matrix_names_only_catalog_entries(matrix, catalog):
    problems = matrix_problems(
        matrix,
        catalog.engines,
        catalog.formats,
        catalog.kv_formats,
        {f.id: f.engines for f in catalog.formats.values()},
    )
    assert problems == []


def test_every_rule_is_sourced(matrix):
    for rule in matrix.rules:
        assert len(rule.source.strip()) > 20, rule


def test_every_catalog_engine_has_rules(matrix, catalog):
    assert set(matrix.engines()) == set(catalog.engines)


def test_rule_needs_a_source():
    with pytest.raises(ValidationError):
        SupportRule.model_validate({"engine": "vllm", "vendor": "NVIDIA", "weights": {"bf16": "bf16"}, "kv": ["bf16"]})


def test_rule_rejects_unknown_fields_and_bad_math():
    base = {"engine": "vllm", "vendor": "NVIDIA", "weights": {"bf16": "bf16"}, "kv": ["bf16"], "source": "docs x"}
    with pytest.raises(ValidationError):
        SupportRule.model_validate({**base, "arch": ["hopper"]})
    with pytest.raises(ValidationError):
        SupportRule.model_validate({**base, "weights": {"bf16": "fp16"}})
    with pytest.raises(ValidationError):
        SupportRule.model_validate({**base, "kv_auto": {"bf16": "fp8"}})  # fp8 KV not listed


def test_matrix_problems_reports_unknown_names(matrix):
    problems = matrix_problems(matrix, ["vllm"], ["bf16"], ["bf16"])
    assert any("unknown engine 'trtllm'" in p for p in problems)
    assert any("unknown weight format 'fp8'" in p for p in problems)
    assert any("unknown KV format 'fp8'" in p for p in problems)


def test_matrix_problems_reports_format_engine_conflict():
    bad = SupportMatrix(
        rules=(SupportRule(engine="vllm", vendor="NVIDIA", weights={"q4-k-m": "int8"}, kv=("fp16",), source="test"),)
    )
    problems = matrix_problems(bad, ["vllm"], ["q4-k-m"], ["fp16"], {"q4-k-m": ["llama.cpp"]})
    assert problems and "only on llama.cpp" in problems[0]


def test_gguf_and_mlx_formats_stay_with_their_engine(matrix):
    for rule in matrix.rules:
        if rule.engine not in ("llama.cpp",):
            assert not set(GGUF) & set(rule.weights), rule.engine
        if rule.engine != "mlx":
            assert not set(MLX_FORMATS) & set(rule.weights), rule.engine
    assert all(r.vendor == "Apple" for r in matrix.rules if r.engine == "mlx")
    assert all(r.vendor == "NVIDIA" for r in matrix.rules if r.engine == "trtllm")


def test_fp8_and_fp4_math_only_on_capable_archs(matrix):
    fp8_archs = {"ada", "hopper", "blackwell", "blackwell-rtx", "cdna3", "cdna4", "gaudi2", "gaudi3"}
    fp8_archs |= {"inferentia2", "trainium2"}
    fp4_archs = {"blackwell", "blackwell-rtx", "cdna4"}
    for rule in matrix.rules:
        if rule.engine == GENERIC:
            continue
        maths = set(rule.weights.values())
        if "fp8" in maths:
            assert rule.archs and set(rule.archs) <= fp8_archs, (rule.engine, rule.vendor, rule.archs)
        if "fp4" in maths:
            assert rule.archs and set(rule.archs) <= fp4_archs, (rule.engine, rule.vendor, rule.archs)
        for wf in ("int4", "int8-wo"):
            assert rule.weights.get(wf, "bf16") == "bf16", (rule.engine, wf)


# -- verdicts -------------------------------------------------------------------------------------------


def test_trtllm_refused_on_apple(matrix, dev):
    v = check_support(matrix, "trtllm", dev("m3-ultra-80c"), "bf16", None)
    assert not v.supported and v.math is None
    assert "TensorRT-LLM" in v.reason and "NVIDIA" in v.reason
    assert "m3-ultra-80c is Apple apple-m3" in v.reason
    assert "mlx" in v.suggestion and "llama.cpp" in v.suggestion


def test_trtllm_refused_on_mi300x(matrix, dev):
    v = check_support(matrix, "trtllm", dev("mi300x"), "fp8", "fp8")
    assert not v.supported
    assert "NVIDIA" in v.reason and "AMD" in v.reason
    assert "vllm" in v.suggestion and "sglang" in v.suggestion


def test_mlx_refused_on_h100(matrix, dev):
    v = check_support(matrix, "mlx", dev("h100-sxm"), "mlx-q4", None)
    assert not v.supported
    assert "Apple" in v.reason and "NVIDIA" in v.reason
    assert "trtllm" in v.suggestion


def test_gguf_refused_on_vllm(matrix, dev):
    v = check_support(matrix, "vllm", dev("h100-sxm"), "q4-k-m", None)
    assert not v.supported
    assert "q4-k-m" in v.reason
    assert "llama.cpp" in v.suggestion  # computed: the engine that runs it on this device


def test_mlx_on_m3_ultra(matrix, dev):
    for wf in MLX_FORMATS:
        v = check_support(matrix, "mlx", dev("m3-ultra-80c"), wf, "bf16")
        assert v.supported and v.math == "bf16", wf
        assert v.warning == ""


def test_nvfp4_on_vllm_b200_is_fp4(matrix, dev):
    v = check_support(matrix, "vllm", dev("b200-sxm"), "nvfp4", None)
    assert v.supported and v.math == "fp4"
    assert v.source


def test_nvfp4_on_vllm_h100_is_16_bit(matrix, dev):
    v = check_support(matrix, "vllm", dev("h100-sxm"), "nvfp4", None)
    assert v.supported and v.math == "bf16"


def test_fp8_on_vllm_a100_is_weight_only(matrix, dev):
    v = check_support(matrix, "vllm", dev("a100-sxm-80gb"), "fp8", "bf16")
    assert v.supported and v.math == "bf16"
    assert check_support(matrix, "vllm", dev("h100-sxm"), "fp8", "fp8").math == "fp8"


def test_mxfp4_on_llama_cpp_rtx_5090_is_not_fp4(matrix, dev):
    v = check_support(matrix, "llama.cpp", dev("rtx-5090"), "mxfp4", "fp16")
    assert v.supported
    assert v.math not in ("fp4", None)


def test_gguf_on_llama_cpp_everywhere_it_runs(matrix, dev):
    for device_id in ARCHS:
        v = check_support(matrix, "llama.cpp", dev(device_id), "q4-k-m", "q8-0")
        assert v.supported, device_id
    assert check_support(matrix, "llama.cpp", dev("h100-sxm"), "q4-k-m", None).math == "int8"
    assert check_support(matrix, "llama.cpp", dev("m3-ultra-80c"), "q4-k-m", None).math == "bf16"


def test_kv_format_refused_with_suggestion(matrix, dev):
    v = check_support(matrix, "vllm", dev("h100-sxm"), "bf16", "q8-0")
    assert not v.supported
    assert "q8-0" in v.reason and "fp8" in v.suggestion


def test_weight_format_refused_names_the_formats_that_run(matrix, dev):
    v = check_support(matrix, "trtllm", dev("a100-sxm-80gb"), "fp8", None)
    assert not v.supported
    assert "int4" in v.suggestion and "vllm" in v.suggestion  # vLLM runs fp8 (weight-only) on Ampere


def test_trtllm_kv_auto_for_modelopt_checkpoints(matrix, dev):
    v = check_support(matrix, "trtllm", dev("b200-sxm"), "nvfp4", None)
    assert v.supported and v.math == "fp4" and v.kv_auto == "fp8"
    assert check_support(matrix, "vllm", dev("b200-sxm"), "nvfp4", None).kv_auto is None


def test_generic_runs_anywhere_with_a_warning(matrix, dev):
    v = check_support(matrix, GENERIC, dev("m3-ultra-80c"), "fp8", "fp8")
    assert v.supported and v.math == "fp8"
    assert v.warning and "what-if" in v.warning
    assert not check_support(matrix, GENERIC, dev("h100-sxm"), "q4-k-m", None).supported


def test_unknown_engine(matrix, dev):
    v = check_support(matrix, "tgi", dev("h100-sxm"), "bf16", None)
    assert not v.supported and "tgi" in v.reason


def test_device_without_arch_matches_only_arch_free_rules(matrix, catalog):
    bare = catalog.hardware["h100-sxm"].model_copy(update={"arch": None})
    v = check_support(matrix, "trtllm", bare, "bf16", None)
    assert not v.supported and "no arch id" in v.reason
    assert check_support(matrix, "llama.cpp", bare, "q4-0", None).supported


def test_supported_engines_and_formats(matrix, dev):
    apple = dev("m3-ultra-80c")
    assert set(supported_engines(matrix, apple)) == {"llama.cpp", "mlx", GENERIC}
    h100 = supported_engines(matrix, dev("h100-sxm"))
    assert {"vllm", "sglang", "trtllm", "llama.cpp"} <= set(h100) and "mlx" not in h100
    formats = supported_formats(matrix, "mlx", apple)
    assert set(MLX_FORMATS) <= set(formats) and "q4-k-m" not in formats
    assert supported_formats(matrix, "mlx", dev("h100-sxm")) == []


def test_support_yaml_shape():
    data = yaml.safe_load((CATALOG_DIR / "support.yaml").read_text(encoding="utf-8"))
    assert set(data) == {"rules"}
