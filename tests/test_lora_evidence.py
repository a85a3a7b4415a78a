"""LoRA per-step cost against published measurements (catalogs/measured/lora_overhead.yaml): the catalog's entries
are sourced and point at catalogued models and devices, the bound and slowdowns by hand for one entry, the
weight-read model is a lower bound of every measurement, and results with LoRA say so."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmcap.catalog.loader import CATALOG_DIR, check_catalog_file, load_catalog
from llmcap.catalog.schema import LoraSpec
from llmcap.estimate.resolve import resolve
from llmcap.load.lora import step_overhead_s
from llmcap.load.lora_evidence import (
    LORA_EVIDENCE_FILE,
    LoraEvidence,
    lora_evidence,
    measured_slowdown,
    roofline_slowdown_bound,
)
from llmcap.load.rate import estimate_load
from llmcap.plan.planner import plan
from llmcap.plan.request import PlanRequest
from llmcap.scenario import Scenario, Slo, Traffic

CAT = load_catalog()


def _obs(oid: str):
    return next(o for o in lora_evidence() if o.id == oid)


def test_observations_are_sourced_and_name_catalog_entries():
    obs = lora_evidence()
    assert len(obs) >= 6 and len({o.id for o in obs}) == len(obs)
    for o in obs:
        assert o.source.startswith(("https://github.com/", "github.com/")), o.id
        assert CAT.model(o.model) is not None
        if o.hardware_id is not None:
            assert CAT.device(o.hardware_id) is not None
    assert {o.level for o in obs} == {"step", "system"}


def test_bound_and_slowdown_by_hand_for_yi_34b_rank_32():
    o = _obs("punica-27-yi-34b-r32")
    # measured: third decode step 0.16362 s with LoRA, 0.10180 s without (punica issue 27)
    assert measured_slowdown(o) == pytest.approx(0.16362 / 0.10180 - 1, rel=1e-3)  # 0.607
    # Yi-34B: 60 layers, hidden 7168, 56 query heads and 8 KV heads of 128, MLP 20480.
    # rank 32 on q, k, v, o, gate, up, down: 32 x [(7168+7168) + 2 (7168+1024) + (7168+7168) + 3 (7168+20480)]
    adapter = 60 * 32 * (14_336 + 2 * 8_192 + 14_336 + 3 * 27_648)  # 245,760,000 parameters
    # weights a decode step reads, all in bf16: per layer q, o 7168^2, k, v 7168 x 1024, MLP 3 x 7168 x 20480 and
    # two norms of 7168; then the final norm and the untied LM head 64000 x 7168 (the embedding table is not read)
    per_layer = 2 * 7168**2 + 2 * 7168 * 1024 + 3 * 7168 * 20480 + 2 * 7168
    weights = 60 * per_layer + 7168 + 64_000 * 7168  # 33,930,165,248
    assert adapter == 245_760_000 and weights == 33_930_165_248
    assert roofline_slowdown_bound(o, CAT) == pytest.approx(adapter / weights)  # 0.72%


def test_weight_read_model_is_a_lower_bound_of_every_measurement():
    # the roofline never predicts more slowdown than an engine was measured to pay; by how much it falls short is
    # reported by bench/lora_evidence.py (2.8x to 168x for the entries of this catalog)
    for o in lora_evidence():
        assert roofline_slowdown_bound(o, CAT) < measured_slowdown(o), o.id


def test_step_overhead_on_l40s_is_far_below_the_measured_one():
    # LoRAX on one L40S, Mistral-7B, one stream: 35 tokens/s with LoRA, 69 without -> 14.1 ms more per step
    measured_s = 1 / 35 - 1 / 69
    r = resolve(Scenario(model="mistralai/Mistral-7B-Instruct-v0.3", hardware="l40s", engine="vllm",
                         input_len=428, output_len=60), CAT)  # fmt: skip
    # the largest adapter the source allows (rank not stated; 64 on all seven projections): 32 layers x 64 x
    # [(4096+4096) + 2 (4096+1024) + (4096+4096) + 3 (4096+14336)] = 167,772,160 parameters in bf16, read at 864 GB/s
    model_s = step_overhead_s(r, LoraSpec(adapters=1, rank=64, targets="all"))
    assert model_s == pytest.approx(167_772_160 * 2 / 864e9)  # 0.39 ms
    assert model_s < measured_s / 30


def test_results_with_lora_carry_the_evidence_note():
    scn = Scenario(model="meta-llama/Llama-3.1-8B-Instruct", hardware="h100-sxm", engine="vllm", input_len=1024,
                   output_len=256)  # fmt: skip
    res = estimate_load(scn, Traffic(rate_rps=2, requests=300, lora=LoraSpec(adapters=8, rank=16)),
                        method="analytic", catalog=CAT)  # fmt: skip
    note = next(n for n in res.notes if "published measurements" in n)
    lo = min(measured_slowdown(o) for o in lora_evidence())
    hi = max(measured_slowdown(o) for o in lora_evidence())
    assert f"{lo:.0%}-{hi:.0%}" in note and "lower bound" in note
    plain = estimate_load(scn, Traffic(rate_rps=2, requests=300), method="analytic", catalog=CAT)
    assert not any("published measurements" in n for n in plain.notes)


def test_a_broken_evidence_entry_is_reported_with_its_field_and_line(tmp_path: Path):
    text = (CATALOG_DIR / LORA_EVIDENCE_FILE).read_text(encoding="utf-8")
    (tmp_path / "measured").mkdir()
    (tmp_path / LORA_EVIDENCE_FILE).write_text(text.replace("lora_over_base: 0.6222", "lora_over_base: 0"))
    line = next(i for i, s in enumerate(text.splitlines(), 1) if "lora_over_base: 0.6222" in s)
    (problem,) = check_catalog_file(tmp_path, LORA_EVIDENCE_FILE, LoraEvidence.model_validate)
    assert problem.file == "catalogs/measured/lora_overhead.yaml"
    assert problem.field == f"observations.0.lora_over_base (line {line})"
    assert "greater than 0" in problem.reason


def test_plans_with_lora_carry_the_evidence_note():
    req = PlanRequest(model="meta-llama/Llama-3.1-8B-Instruct", rate_rps=2, input_len=1024, output_len=256,
                      slo=Slo(), hardware=("h100-sxm",), weights=("fp8",))  # fmt: skip
    with_adapters = plan(req.model_copy(update={"lora": LoraSpec(adapters=8, rank=16)}), CAT)
    assert with_adapters.candidates and any("published measurements" in n for n in with_adapters.notes)
    assert not any("published measurements" in n for n in plan(req, CAT).notes)
