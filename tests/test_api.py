"""The public API contract: `llmcap.__all__` is a short curated list, pinned here; changing it is a decision
(update this list and the README's "Python API" section together). Each name is documented, and the README's
three tasks run as written."""

from __future__ import annotations

import inspect

import llmcap

PUBLIC = [
    "Scenario",
    "Traffic",
    "Slo",
    "Pricing",
    "PlanRequest",
    "estimate",
    "estimate_load",
    "closed_loop_costs",
    "plan",
    "predict_rows",
    "check_support",
    "Estimate",
    "LoadEstimate",
    "PointCosts",
    "Plan",
    "Verdict",
    "load_catalog",
    "Catalog",
    "CatalogError",
    "UnknownIdError",
    "UnsupportedError",
]


def test_all_is_pinned():
    assert llmcap.__all__ == PUBLIC


def test_every_public_name_exists_and_is_documented():
    for name in PUBLIC:
        obj = getattr(llmcap, name)
        assert inspect.getdoc(obj), f"llmcap.{name} has no docstring"


def test_the_input_types_are_frozen_models():
    for name in ("Scenario", "Traffic", "Slo", "Pricing", "PlanRequest"):
        assert getattr(llmcap, name).model_config.get("frozen") is True, name


def test_the_readme_tasks_run():
    scn = llmcap.Scenario(model="meta-llama/Llama-3.1-8B-Instruct", hardware="h100-sxm", engine="vllm",
                          weight_format="fp8", input_len=1024, output_len=256, concurrency=16)  # fmt: skip
    est = llmcap.estimate(scn)
    assert est.fits and est.serving.tpot_ms > 0 and est.memory.max_concurrency >= 16
    load = llmcap.estimate_load(scn, llmcap.Traffic(rate_rps=12), llmcap.Slo(ttft_ms=500, tpot_ms=50),
                                llmcap.Pricing(provider="AWS"), method="analytic")  # fmt: skip
    assert load.fits and load.ttft_ms.p90 > 0 and load.cost.usd_per_million_output_tokens > 0
    best = llmcap.plan(llmcap.PlanRequest(model="meta-llama/Llama-3.1-8B-Instruct", rate_rps=10, input_len=1000,
                                          output_len=200, slo=llmcap.Slo(ttft_ms=1500, tpot_ms=50)))  # fmt: skip
    assert best.candidates and best.candidates[0].usd_per_hour > 0


def test_an_unsupported_combination_is_an_error_with_a_reason():
    scn = llmcap.Scenario(model="meta-llama/Llama-3.1-8B-Instruct", hardware="m3-ultra-80c", engine="trtllm")
    try:
        llmcap.estimate(scn)
    except llmcap.UnsupportedError as exc:
        assert "TensorRT-LLM" in str(exc) and "mlx" in str(exc)
    else:
        raise AssertionError("TensorRT-LLM on Apple silicon was estimated")
