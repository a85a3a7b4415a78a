"""Estimator: hand-computed cases, invariants, and the does-not-fit path."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llmcap.catalog.loader import load_catalog
from llmcap.estimate.single import estimate
from llmcap.perf.operators import causal_pairs, mean_window_context
from llmcap.scenario import Scenario

CAT = load_catalog()
LLAMA8 = "meta-llama/Llama-3.1-8B-Instruct"


def scn(**kw) -> Scenario:
    base = dict(model=LLAMA8, hardware="h100-sxm", input_len=1024, output_len=256, concurrency=1, engine="vllm")
    return Scenario(**{**base, **kw})


def test_llama8b_bf16_weights_by_hand():
    # 8,030,261,248 parameters (32 layers x 218,112,000 + 2 x 128,256 x 4,096 embeddings + norm) x 2 bytes
    est = estimate(scn(weight_format="bf16"))
    assert est.memory.weights_gb == pytest.approx(16.06, abs=0.05)


def test_llama8b_kv_per_token_by_hand():
    # 2 (K,V) x 32 layers x 8 kv heads x 128 dims x 2 bytes = 131,072 bytes per token
    est = estimate(scn(input_len=1000, output_len=24))
    assert est.memory.kv_gb_per_sequence == pytest.approx(1024 * 131_072 / 1e9, rel=1e-9)


def test_decode_no_faster_than_weight_read():
    # one decode step must read every weight once: >= weights / bandwidth
    est = estimate(scn(weight_format="bf16", concurrency=1))
    floor_ms = est.memory.weights_gb * 1e9 / (3350e9) * 1e3
    assert est.serving.tpot_ms >= floor_ms
    assert est.decode.bound in ("memory", "overhead")


def test_prefill_long_prompt_is_compute_bound():
    est = estimate(scn(input_len=8192, output_len=16, weight_format="bf16"))
    assert est.prefill.bound == "compute"
    # 2 * 8.03e9 FLOPs per token at <= 989 TFLOP/s: prefill can be no faster than that
    assert est.prefill.time_ms >= 2 * 8.03e9 * 8192 / 989e12 * 1e3


def test_tp2_halves_layer_weights():
    one = estimate(scn(tp=1)).memory.weights_gb
    two = estimate(scn(tp=2)).memory.weights_gb
    assert two == pytest.approx(one / 2, rel=0.01)


def test_fp8_uses_fp8_math_on_h100_and_falls_back_on_a100():
    assert estimate(scn(weight_format="fp8")).math == "fp8"
    est = estimate(scn(weight_format="fp8", hardware="a100-sxm-80gb"))
    assert est.math == "bf16"  # vLLM runs FP8 weights on Ampere as W8A16 (FP8 Marlin): the matrix's math path
    assert any("runs fp8 weights with bf16 math" in n for n in est.notes)


def test_does_not_fit_says_what_overflows():
    est = estimate(scn(model="meta-llama/Llama-3.1-405B-Instruct", hardware="l4", weight_format="bf16"))
    assert est.status == "does_not_fit" and not est.fits
    assert "weights need" in est.message and "short by" in est.message
    assert est.memory.overflow_gb > 700
    assert est.serving is None


def test_long_context_kv_does_not_fit():
    est = estimate(scn(hardware="rtx-4090", weight_format="bf16", input_len=500_000, output_len=10))
    assert est.status == "does_not_fit"


def test_concurrency_max_is_memory_bound():
    est = estimate(scn(concurrency="max", weight_format="fp8", kv_format="fp8"))
    m = est.memory
    # at max concurrency the KV cache fills what weights, activations and runtime leave
    assert est.serving.concurrency >= m.max_concurrency
    assert m.max_concurrency * m.kv_gb_per_sequence <= m.capacity_gb


def test_moe_distinct_experts_grow_with_batch():
    small = estimate(scn(model="Qwen/Qwen3-30B-A3B", concurrency=1)).operators
    big = estimate(scn(model="Qwen/Qwen3-30B-A3B", concurrency=64)).operators

    def expert_mb(ops):
        return next(o.weight_mb for o in ops if o.phase == "decode" and o.operator == "moe_experts")

    # E(1-(1-k/E)^B): 8 of 128 experts at B=1, about 128*(1-(120/128)^64) = 126 at B=64
    assert expert_mb(big) / expert_mb(small) == pytest.approx((128 * (1 - (120 / 128) ** 64)) / 8, rel=0.02)


def test_mla_kv_is_latent_sized():
    est = estimate(
        scn(
            model="deepseek-ai/DeepSeek-V3",
            hardware="h200-sxm",
            tp=8,
            weight_format="fp8",
            input_len=1000,
            output_len=24,
        )
    )
    # (512 latent + 64 rope) x 61 layers x 2 bytes per token, not split by TP
    assert est.memory.kv_gb_per_sequence == pytest.approx(1024 * 576 * 61 * 2 / 1e9, rel=1e-6)


def test_sliding_window_caps_kv():
    short = estimate(scn(model="google/gemma-2-9b-it", input_len=4000, output_len=96)).memory.kv_gb_per_sequence
    long = estimate(scn(model="google/gemma-2-9b-it", input_len=8000, output_len=192)).memory.kv_gb_per_sequence
    # 21 global layers double, 21 sliding layers stay at the 4096 window
    assert long / short == pytest.approx((21 * 8192 + 21 * 4096) / (21 * 4096 + 21 * 4096), rel=1e-6)


def test_causal_pairs_by_hand():
    assert causal_pairs(np.array(4.0), 0) == 10  # 1+2+3+4
    assert causal_pairs(np.array(5.0), 2) == 1 + 2 + 2 + 2 + 2
    assert mean_window_context(np.array(1.0), np.array(4.0), np.array(0.0)) == pytest.approx(2.5)


def test_operator_table_rows_carry_their_terms():
    est = estimate(scn())
    names = {o.operator for o in est.operators}
    assert {"qkv_proj", "attention", "o_proj", "mlp", "lm_head"} <= names
    for o in est.operators:
        assert o.time_ms == pytest.approx(max(o.compute_ms, o.memory_ms) if o.bound != "interconnect" else o.comm_ms)


def test_pp_more_than_layers_is_explained():
    est = estimate(scn(pp=64))
    assert est.status == "does_not_fit" and "layers" in est.message


def test_all_numbers_finite():
    est = estimate(scn(tp=4, replicas=2, concurrency=64))
    for v in est.serving.model_dump().values():
        assert math.isfinite(v) and v >= 0


def test_block_evaluation_matches_single_rows():
    """More points than one block: every row equals the same scenario evaluated alone."""
    from llmcap.estimate.sweep import CHUNK, build_input, evaluate, expand

    models = [LLAMA8, "Qwen/Qwen3-30B-A3B", "google/gemma-2-9b-it"]
    inp, errors = build_input([scn(model=m, tp=2, concurrency=16) for m in models], CAT)
    assert not any(errors)
    n = CHUNK + 7
    rng = np.random.default_rng(1)
    big = expand(
        inp,
        rng.integers(0, len(models), n),
        input_len=rng.integers(1, 20_000, n).astype(float),
        output_len=rng.integers(1, 2_000, n).astype(float),
        concurrency=rng.choice([1.0, 8.0, 64.0, np.inf], n),
    )
    res = evaluate(big)
    for i in (0, 1, CHUNK - 1, CHUNK, n - 1):
        one = evaluate(expand(big, np.array([i])))
        for name in ("ttft_s", "tpot_s", "requests_per_s", "kv_bytes_per_seq", "prefill_s"):
            assert getattr(res, name)[i] == pytest.approx(getattr(one, name)[0], rel=1e-12), (i, name)


def test_step_time_is_the_sum_of_its_operator_rows():
    """The block step timer (empty operators skipped) adds up the timed operator table."""
    from llmcap.estimate.resolve import resolve
    from llmcap.perf.operators import decode_step, prefill_step
    from llmcap.perf.timing import step_time, time_rows

    for model, tp, ep in ((LLAMA8, 2, 1), ("Qwen/Qwen3-30B-A3B", 4, 4), ("google/gemma-2-9b-it", 1, 1)):
        s = resolve(scn(model=model, tp=tp, ep=ep), CAT).system
        one = np.array([1.0])
        steps = (
            prefill_step(np.array([3.0]), np.array([1500.0]), s.shape),
            decode_step(np.array([48.0]), np.array([2100.0]), np.array([1900.0])),
            decode_step(np.array([8.0]), np.array([900.0]), np.array([900.0])) + prefill_step(one, one * 700, s.shape),
        )
        for step in steps:
            rows = time_rows(s.shape, s.dev, s.fmt, s.layout, s.eff, step)
            total = step_time(s.shape, s.dev, s.fmt, s.layout, s.eff, step)
            table = sum(float(rt.time_s[0]) for rt in rows)
            # the step adds pipeline hand-offs (none here, pp=1) and the fixed per-step overhead
            assert float(total.total_s[0]) == pytest.approx(table + float(total.overhead_s[0]), rel=1e-12)
