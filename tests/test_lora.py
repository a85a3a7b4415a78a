"""LoRA adapters (issue 15): memory by hand for Llama-3.1-8B, what they take from the KV cache, the per-step cost,
refusals and hostile flag values."""

from __future__ import annotations

import argparse

import pytest

from llmcap.catalog.loader import load_catalog
from llmcap.catalog.schema import LoraSpec
from llmcap.cli import workload_flags
from llmcap.estimate.resolve import resolve
from llmcap.load.lora import adapter_gb_per_device, adapter_params, distinct_adapters, step_overhead_s
from llmcap.load.rate import estimate_load
from llmcap.load.rate_prepare import prepare
from llmcap.load.rate_types import LoadError
from llmcap.scenario import Scenario, Traffic

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
CAT = load_catalog()
SCN = Scenario(model=MODEL, hardware="h100-sxm", engine="vllm", input_len=1024, output_len=256)


def test_adapter_memory_by_hand_llama_3_1_8b():
    r = resolve(SCN, CAT)
    # Llama-3.1-8B: 32 layers, hidden 4096, 32 query heads and 8 KV heads of 128, MLP 14336
    # rank 16 on q, k, v, o: 16 x [(4096 + 4096) + 2 (4096 + 1024) + (4096 + 4096)] = 425,984 per layer
    assert adapter_params(r, LoraSpec(adapters=1, rank=16)) == 32 * 425_984
    # all: + gate, up, down = 3 x 16 x (4096 + 14336) = 884,736 per layer
    assert adapter_params(r, LoraSpec(adapters=1, rank=16, targets="all")) == 32 * (425_984 + 884_736)
    assert adapter_gb_per_device(r, LoraSpec(adapters=1, rank=16)) == pytest.approx(32 * 425_984 * 2 / 1e9)
    r2 = resolve(SCN.model_copy(update={"tp": 2}), CAT)
    assert adapter_gb_per_device(r2, LoraSpec(adapters=1, rank=16)) == pytest.approx(32 * 425_984 * 2 / 1e9 / 2)


def test_distinct_adapters_in_a_batch():
    assert distinct_adapters(1, 64) == pytest.approx(1.0)
    assert distinct_adapters(100, 1) == pytest.approx(1.0)
    assert distinct_adapters(4, 2) == pytest.approx(4 * (1 - 0.75**2))  # 1.75
    assert distinct_adapters(10_000, 1024) < 1024


def test_adapters_take_kv_and_slow_steps():
    spec = LoraSpec(adapters=100, rank=64, targets="all")
    base = prepare(SCN, Traffic(rate_rps=10, requests=1000), catalog=CAT)
    with_lora = prepare(SCN, Traffic(rate_rps=10, requests=1000, lora=spec), catalog=CAT)
    per_token = 32 * 8 * 128 * 2 * 2  # bytes of KV per token (bf16)
    taken = 100 * adapter_gb_per_device(resolve(SCN, CAT), spec) * 1e9 / per_token
    assert with_lora.cfg.kv_capacity_tokens == pytest.approx(base.cfg.kv_capacity_tokens - taken, rel=1e-6)
    r = resolve(SCN, CAT)
    assert step_overhead_s(r, spec) == pytest.approx(
        distinct_adapters(100, r.engine.max_seqs) * adapter_gb_per_device(r, spec) * 1e9 / 3350e9
    )
    for method in ("simulate", "analytic"):
        a = estimate_load(SCN, Traffic(rate_rps=10, requests=1000), method=method, catalog=CAT)
        b = estimate_load(SCN, Traffic(rate_rps=10, requests=1000, lora=spec), method=method, catalog=CAT)
        assert b.tpot_ms.mean > a.tpot_ms.mean and b.max_rate_rps < a.max_rate_rps
        assert b.lora_memory_gb_per_device == pytest.approx(100 * adapter_gb_per_device(r, spec))
        assert a.lora_memory_gb_per_device is None


def test_too_many_adapters_and_mla_are_refused():
    with pytest.raises(LoadError, match="--lora-adapters"):
        prepare(SCN, Traffic(rate_rps=1, requests=100, lora=LoraSpec(adapters=10_000, rank=1024, targets="all")),
                catalog=CAT)  # fmt: skip
    mla = [m for m, cm in CAT.models.items() if cm.arch.mla is not None]
    if mla:  # the catalog has DeepSeek-style models
        r = resolve(Scenario(model=mla[0], hardware="b200-sxm", tp=8, input_len=100, output_len=10), CAT)
        with pytest.raises(LoadError, match="MLA"):
            adapter_params(r, LoraSpec(adapters=1))


@pytest.mark.parametrize(
    ("adapters", "rank", "targets", "flag"),
    [(0, None, None, "--lora-adapters"), (-1, None, None, "--lora-adapters"), (10**6, None, None, "--lora-adapters"),
     (4, 0, None, "--lora-rank"), (4, 4096, None, "--lora-rank"), (None, 8, None, "--lora-rank"),
     (None, None, "all", "--lora-targets")],
)  # fmt: skip
def test_hostile_lora_flags(adapters, rank, targets, flag):
    args = argparse.Namespace(turns=None, think_s=None, new_tokens=None, system_prompt_tokens=None, prefix_cache=None,
                              kv_offload=None, samples=None, lora_adapters=adapters, lora_rank=rank,
                              lora_targets=targets)  # fmt: skip
    with pytest.raises(ValueError, match=flag):
        workload_flags.traffic_fields(args, None)


def test_planner_with_adapters_never_cheaper_and_reports_their_memory():
    from llmcap.plan.planner import plan
    from llmcap.plan.request import PlanRequest
    from llmcap.scenario import Slo

    base = dict(model=MODEL, rate_rps=20, input_len=1024, output_len=256, slo=Slo(ttft_ms=1000, tpot_ms=50),
                hardware=("h100-sxm", "l40s"), top=5)  # fmt: skip
    spec = LoraSpec(adapters=100, rank=64, targets="all")
    plain, adapted = plan(PlanRequest(**base), CAT), plan(PlanRequest(**base, lora=spec), CAT)
    assert adapted.candidates and plain.candidates
    assert adapted.candidates[0].usd_per_hour >= plain.candidates[0].usd_per_hour
    per_replica = 100 * adapter_params(resolve(SCN, CAT), spec) * 2 / 1e9
    for c in adapted.candidates:
        assert c.lora_memory_gb_per_device == pytest.approx(per_replica / (c.tp * c.pp))
    same = {(c.hardware, c.engine, c.weight_format, c.tp, c.replicas): c.tpot_ms_p90 for c in plain.candidates}
    both = [(same[k], c.tpot_ms_p90) for c in adapted.candidates
            if (k := (c.hardware, c.engine, c.weight_format, c.tp, c.replicas)) in same]  # fmt: skip
    assert both and all(t > p for p, t in both)
