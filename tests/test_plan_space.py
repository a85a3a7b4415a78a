"""The planner's search space: layouts the model's shapes allow, tiled into sweep rows."""

import numpy as np

from llmcap.catalog.loader import load_catalog
from llmcap.estimate.sweep import evaluate
from llmcap.plan.space import build_space, layouts, resolve_families

LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"


def _arch(model):
    return load_catalog().model(model).arch


def test_dense_layouts_power_of_two_tp_dividing_heads_and_pp_only_at_top_tp():
    arch = _arch(LLAMA_8B)  # 32 heads, 32 layers
    got = layouts(arch, domain=8, max_devices=8)
    assert got == [(1, 1, 1), (2, 1, 1), (4, 1, 1), (8, 1, 1)]
    got16 = layouts(arch, domain=8, max_devices=32)
    assert (8, 2, 1) in got16 and (8, 4, 1) in got16 and (4, 2, 1) not in got16
    assert all(tp * pp <= 32 for tp, pp, _ in got16)


def test_single_device_kinds_get_one_layout():
    assert layouts(_arch(LLAMA_8B), domain=1, max_devices=8, multi_device=False) == [(1, 1, 1)]


def test_moe_offers_expert_parallel_equal_to_tp():
    cat = load_catalog()
    moe = next(m.arch for m in cat.models.values() if m.arch.moe is not None and m.arch.moe.num_experts >= 8)
    got = layouts(moe, domain=8, max_devices=8)
    assert (8, 1, 8) in got and (8, 1, 1) in got and (1, 1, 1) in got


def test_space_rows_match_single_scenarios():
    """A row of the tiled space gives the same numbers as the sweep of that one scenario."""
    from llmcap.estimate.sweep import sweep
    from llmcap.scenario import Scenario

    cat = load_catalog()
    fams, rejected = resolve_families(cat, LLAMA_8B, ["h100-sxm", "l4"], ["fp8", "nope"], [None], ["vllm"])
    assert len(fams) == 2 and len(rejected) == 2 and "nope" in rejected[0][1]
    space = build_space(fams, input_len=2000, output_len=300, max_devices=8)
    res = evaluate(space.inp)
    row = int(np.flatnonzero((space.tp == 2) & (space.max_seqs == 64))[0])
    fam = space.families[space.family[row]]
    scn = Scenario(
        model=LLAMA_8B,
        hardware=fam.hardware,
        tp=2,
        weight_format="fp8",
        engine="vllm",
        input_len=2000,
        output_len=300,
        concurrency=64,
    )
    one, _ = sweep([scn], cat)
    assert res.tpot_s[row] == one.tpot_s[0]
    assert res.weights_bytes[row] == one.weights_bytes[0]
