"""Hypothesis invariants over the catalog: monotone in bandwidth and memory, finite everywhere."""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from runnable import runnable, runnable_engine

from llmcap.catalog.custom import with_custom
from llmcap.catalog.loader import load_catalog
from llmcap.estimate.single import estimate
from llmcap.estimate.sweep import build_input, evaluate
from llmcap.scenario import Scenario

CAT = load_catalog()
MODELS = sorted(CAT.models)
DEVICES = sorted(CAT.hardware)
GPU_FORMATS = ["bf16", "fp8", "int4", "int8-wo", "nvfp4"]

scenarios = st.builds(
    Scenario,
    model=st.sampled_from(MODELS),
    hardware=st.sampled_from(DEVICES),
    tp=st.sampled_from([1, 2, 4, 8]),
    weight_format=st.sampled_from(GPU_FORMATS),
    engine=st.sampled_from(["vllm", "sglang", "trtllm", "generic"]),
    input_len=st.integers(1, 32_000),
    output_len=st.integers(1, 4_000),
    concurrency=st.one_of(st.integers(1, 512), st.just("max")),
).map(lambda s: runnable(CAT, s)).filter(lambda s: s is not None)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _with_device(scn: Scenario, **changes):
    dev = CAT.device(scn.hardware).model_copy(update=changes)
    return estimate(scn, with_custom(CAT, devices={dev.id: dev}, replace=True))


@SETTINGS
@given(scenarios)
def test_more_bandwidth_never_slower(scn):
    dev = CAT.device(scn.hardware)
    a = estimate(scn, CAT)
    b = _with_device(scn, mem_bw_gbps=dev.mem_bw_gbps * 1.5)
    if a.fits:
        assert b.fits
        assert b.serving.tpot_ms <= a.serving.tpot_ms * (1 + 1e-9)
        assert b.prefill.time_ms <= a.prefill.time_ms * (1 + 1e-9)


@SETTINGS
@given(scenarios)
def test_more_memory_never_fits_less(scn):
    dev = CAT.device(scn.hardware)
    a = estimate(scn, CAT)
    b = _with_device(scn, memory_gb=dev.memory_gb * 2, usable_memory_gb=None)
    assert b.memory.max_concurrency >= a.memory.max_concurrency
    assert b.fits or not a.fits


@SETTINGS
@given(scenarios)
def test_tp2_halves_weights(scn):
    one = estimate(scn.model_copy(update=dict(tp=1, ep=1)), CAT).memory
    two = estimate(scn.model_copy(update=dict(tp=2, ep=1)), CAT).memory
    # layers split in two; embeddings and head too (vocab-parallel)
    assert two.weights_gb == np.float64(one.weights_gb / 2) or abs(two.weights_gb - one.weights_gb / 2) < 1e-6


def test_catalog_cross_product_is_finite():
    """Every model x device x format (GPU formats) x engine that runs it at two shapes: no NaN, infinity, negative."""
    scns = [
        Scenario(model=m, hardware=d, weight_format=f, engine=e, input_len=s, output_len=o, concurrency=c)
        for m in MODELS
        for d in DEVICES
        for f in ("bf16", "fp8", "int4")
        for e in {runnable_engine(CAT, d, f, "vllm"), runnable_engine(CAT, d, f, "trtllm")} - {None}
        for s, o, c in ((128, 32, 1), (4096, 1024, "max"))
    ]
    inp, errors = build_input(scns, CAT)
    assert not any(errors)
    res = evaluate(inp)
    for f in dataclasses.fields(res):
        arr = np.asarray(getattr(res, f.name), dtype=float)
        if f.name in ("kv_room_bytes",):  # negative means the weights overflow; finite still
            assert np.isfinite(arr).all(), f.name
            continue
        assert np.isfinite(arr).all(), f.name
        assert (arr >= 0).all(), f.name
    assert res.fits.any() and (~res.fits).any()
