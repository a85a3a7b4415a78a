"""Numeric guards over the whole catalog, beyond tests/test_estimator_invariants.py (which covers three GPU formats
on two shapes in the closed loop):

* closed loop (llmcap.estimate.sweep): every model x every device x every weight format (GGUF on llama.cpp), at extreme
  shapes and layouts: every output finite and non-negative, and whatever does not fit says so;
* open loop (llmcap.load.queueing): every model x every device: the load curve, latencies below and above the
  maximum rate, and goodput are finite and non-negative where stable, and 0 / inf (not NaN) where not;
* impossible inputs (a device with almost no memory or bandwidth, absurd lengths, layouts the model cannot
  split) come back as an explained "does not fit" or a clear error, never as a number.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from runnable import runnable_engine

from llmcap.catalog.custom import with_custom
from llmcap.catalog.loader import load_catalog
from llmcap.estimate.compare import evaluate_rows
from llmcap.estimate.single import estimate
from llmcap.estimate.sweep import build_input, evaluate
from llmcap.load.queueing import analyze, goodput, load_curve
from llmcap.scenario import MAX_TOKENS, Scenario

CAT = load_catalog()
MODELS = sorted(CAT.models)
DEVICES = sorted(CAT.hardware)
FORMATS = sorted(CAT.formats)
LLAMA8 = "meta-llama/Llama-3.1-8B-Instruct"
SHAPES = [  # (input, output, concurrency, tp, pp, replicas)
    (1, 1, 1, 1, 1, 1),
    (MAX_TOKENS, 1, 1, 1, 1, 1),
    (1, MAX_TOKENS, "max", 2, 1, 1),
    (8192, 2048, 1_000_000, 8, 2, 100_000),
]
# Fields that may be negative (memory left for the KV cache when the weights overflow): finite only.
SIGNED = {"kv_room_bytes"}


# The engine each (device, format) runs on (catalogs/support.yaml); None where no engine runs it (GGUF on a TPU).
ENGINE = {(d, f): runnable_engine(CAT, d, f) for d in DEVICES for f in FORMATS}
RUNNABLE = [(m, d, f) for m in MODELS for d in DEVICES for f in FORMATS if ENGINE[d, f] is not None]


def _cross_product() -> list[Scenario]:
    out = []
    for i, (m, d, f) in enumerate(RUNNABLE):
        isl, osl, conc, tp, pp, rep = SHAPES[i % len(SHAPES)]
        out.append(Scenario(model=m, hardware=d, weight_format=f, engine=ENGINE[d, f], input_len=isl, output_len=osl,
                            concurrency=conc, tp=tp, pp=pp, replicas=rep))  # fmt: skip
    return out


@pytest.fixture(scope="module")
def closed_loop():
    scns = _cross_product()
    inp, errors = build_input(scns, CAT)
    return scns, errors, evaluate(inp)


def test_every_model_device_format_resolves(closed_loop):
    scns, errors, _ = closed_loop
    assert len(scns) == len(RUNNABLE) >= 0.8 * len(MODELS) * len(DEVICES) * len(FORMATS) >= 40_000
    assert [e for e in errors if e is not None] == []


def test_closed_loop_outputs_are_finite_and_non_negative(closed_loop):
    scns, _, res = closed_loop
    for f in dataclasses.fields(res):
        arr = np.asarray(getattr(res, f.name), dtype=float)
        assert np.isfinite(arr).all(), f"{f.name}: {np.count_nonzero(~np.isfinite(arr))} not finite"
        if f.name not in SIGNED:
            assert (arr >= 0).all(), f"{f.name}: {np.count_nonzero(arr < 0)} negative"
    fits = res.fits.astype(bool)
    assert fits.any() and (~fits).any()
    # where it fits, work gets done at a positive speed (one output token has no decode step: TPOT 0)
    decodes = np.array([s.output_len > 1 for s in scns])
    assert (res.ttft_s[fits] > 0).all() and (res.requests_per_s[fits] > 0).all()
    assert (res.tpot_s[fits & decodes] > 0).all() and (res.tpot_s[fits & ~decodes] == 0).all()
    assert (res.running[fits] >= 1).all()


def test_lengths_beyond_the_context_window_never_fit(closed_loop):
    scns, _, res = closed_loop
    beyond = np.array([s.input_len + s.output_len - 1 > CAT.models[s.model].arch.max_context for s in scns])
    assert beyond.sum() > 10_000
    assert not res.fits.astype(bool)[beyond].any()


@pytest.fixture(scope="module")
def open_loop():
    scns = [
        Scenario(model=m, hardware=d, weight_format=f, engine=ENGINE[d, f], input_len=isl, output_len=osl)
        for m in MODELS
        for d in DEVICES
        for f, isl, osl in (("bf16", 2048, 256), ("fp8", 128, 2048))
        if ENGINE[d, f] is not None
    ]
    inp, errors = build_input(scns, CAT)
    assert not any(errors)
    return load_curve(inp, grid=16)


def test_open_loop_curve_is_finite_and_non_negative(open_loop):
    curve = open_loop
    fits = curve.fits
    assert fits.any() and (~fits).any()
    for name in ("n", "ttft_s", "tpot_s", "rate"):
        arr = getattr(curve, name)[fits]
        assert np.isfinite(arr).all() and (arr >= 0).all(), name
    assert (curve.max_rate_rps[fits] > 0).all()
    assert (curve.max_rate_rps[~fits] == 0).all()


@pytest.mark.parametrize("load", [0.01, 0.5, 0.95])
def test_open_loop_latencies_are_finite_below_the_maximum_rate(open_loop, load):
    curve = open_loop
    fits = curve.fits
    rate = np.where(fits, curve.max_rate_rps * load, 1.0)
    res = analyze(curve, rate, arrival_cv=1.5, output_cv=1.0)
    assert res.stable[fits].all()
    for name in ("ttft_s", "tpot_s", "e2e_s", "queue_s", "mean_batch", "in_system", "utilization"):
        arr = getattr(res, name)[fits]
        assert np.isfinite(arr).all() and (arr >= 0).all(), name
    for name in ("ttft_p", "tpot_p", "e2e_p", "queue_p"):
        arr = getattr(res, name)[fits]
        assert np.isfinite(arr).all() and (arr >= 0).all(), name
        assert (np.diff(arr, axis=1) >= -1e-9 * arr[:, 1:]).all(), f"{name} percentiles not ordered"
    assert (res.utilization[fits] <= load * (1 + 1e-9)).all()


def test_open_loop_above_the_maximum_rate_is_unstable_not_a_number(open_loop):
    curve = open_loop
    res = analyze(curve, np.maximum(curve.max_rate_rps, 1.0) * 1.5)
    assert not res.stable.any()
    for name in ("ttft_s", "e2e_s", "queue_s", "ttft_p", "e2e_p"):
        arr = getattr(res, name)
        assert not np.isnan(arr).any(), name
        assert np.isposinf(arr).all(), name  # an unbounded queue is infinite latency, said as such


def test_goodput_is_between_zero_and_the_maximum_rate(open_loop):
    curve = open_loop
    good = goodput(curve, 2.0, 0.1, pct=90.0, iterations=20)
    assert np.isfinite(good).all() and (good >= 0).all()
    assert (good <= curve.max_rate_rps * (1 + 1e-9)).all()
    assert (good[~curve.fits] == 0).all()
    impossible = goodput(curve, 1e-6, 1e-6, pct=90.0, iterations=20)  # 1 microsecond TTFT: nobody meets it
    assert (impossible == 0).all()


# -- impossible inputs: explained, not a number ---------------------------------------------------------------------
def _device(**changes):
    return CAT.device("h100-sxm").model_copy(update={"id": "odd-gpu", **changes})


@pytest.mark.parametrize(
    ("scenario", "device", "explained"),
    [
        (Scenario(model=LLAMA8, hardware="odd-gpu"), {"memory_gb": 1e-9, "reported_memory_mib": None}, "weights need"),
        (Scenario(model=LLAMA8, hardware="h100-sxm", input_len=MAX_TOKENS), None, "context window of 131,072"),
        (Scenario(model=LLAMA8, hardware="h100-sxm", output_len=MAX_TOKENS), None, "context window"),
        (Scenario(model=LLAMA8, hardware="l4", input_len=120_000, concurrency=8), None, "KV cache"),
        (Scenario(model="deepseek-ai/DeepSeek-V3", hardware="l4", weight_format="bf16"), None, "weights need"),
        (Scenario(model=LLAMA8, hardware="h100-sxm", tp=4096), None, "tp=4096 exceeds the model's 32 attention heads"),
        (Scenario(model=LLAMA8, hardware="h100-sxm", tp=64), None, "tp=64 exceeds"),
        (Scenario(model=LLAMA8, hardware="h100-sxm", pp=4096), None, "pp=4096 exceeds the model's 32 layers"),
    ],
)
def test_impossible_inputs_are_explained_not_numbers(scenario, device, explained):
    dev = _device(**device) if device else None
    est = estimate(scenario, with_custom(CAT, devices={dev.id: dev}, replace=True) if dev else CAT)
    assert est.status == "does_not_fit" and not est.fits
    assert explained in est.message and len(est.message) > 20, est.message
    assert est.serving is None  # no latency or throughput is given for what cannot run
    if dev is None:
        row = evaluate_rows([scenario], CAT, explain=True)[0]
        assert row["status"] == "does_not_fit" and row["message"] == est.message
        assert row["ttft_ms"] is None and row["tpot_ms"] is None and row["output_tokens_per_s"] is None


def test_the_context_window_boundary():
    """A prompt filling the window may still produce one token (its KV is never stored); a second one may not."""
    full = CAT.model(LLAMA8).arch.max_context
    at_edge = estimate(Scenario(model=LLAMA8, hardware="b200-sxm", input_len=full, output_len=1), CAT)
    assert "context window" not in at_edge.message
    beyond = estimate(Scenario(model=LLAMA8, hardware="b200-sxm", input_len=full, output_len=2), CAT)
    assert beyond.status == "does_not_fit" and "exceeds the model's context window" in beyond.message


def test_a_device_with_almost_no_bandwidth_is_slow_not_broken():
    dev = _device(mem_bw_gbps=1e-6, peak_tflops={"bf16": 1e-6})
    est = estimate(Scenario(model=LLAMA8, hardware="odd-gpu", concurrency=4), with_custom(CAT, devices={dev.id: dev}))
    assert est.fits
    s = est.serving
    for v in (s.ttft_ms, s.tpot_ms, s.e2e_ms, s.output_tokens_per_s, s.requests_per_s):
        assert np.isfinite(v) and v > 0
    assert s.tpot_ms > 1e9  # a million times slower than any real device, and still a number


def test_unknown_ids_are_a_clear_error_not_a_number():
    rows = evaluate_rows(
        [Scenario(model="no/such-model", hardware="h100-sxm"), Scenario(model=LLAMA8, hardware="no-such-gpu")], CAT
    )
    assert [r["status"] for r in rows] == ["error", "error"]
    assert "no/such-model" in rows[0]["message"] and "no-such-gpu" in rows[1]["message"]
    assert all(r["ttft_ms"] is None for r in rows)
