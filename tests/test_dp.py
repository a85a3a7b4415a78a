"""Attention data parallel (`dp`, issue 12): dp groups of tp/dp devices each run attention on their own share of
the sequences, while the MLP and the experts stay split over tp."""

from __future__ import annotations

import csv

import pytest

from llmcap.catalog.loader import load_catalog
from llmcap.cli.main import main
from llmcap.estimate.predict import predict_rows
from llmcap.estimate.single import estimate
from llmcap.perf.shapes import ModelShape
from llmcap.scenario import Scenario

CAT = load_catalog()
DSV3 = "deepseek-ai/DeepSeek-V3"  # MLA: one latent KV "head", replicated over the attention tp group
LLAMA70 = "meta-llama/Llama-3.1-70B-Instruct"  # GQA with 8 KV heads


def _kv_gb_per_sequence(model: str, tp: int, dp: int) -> float:
    scn = Scenario(model=model, hardware="h200-sxm", tp=tp, dp=dp, weight_format="fp8", engine="sglang",
                   input_len=4096, output_len=1024, concurrency=8)  # fmt: skip
    est = estimate(scn, CAT)
    return est.memory.kv_gb_per_sequence


def test_dp_halves_the_kv_per_device_of_an_mla_model():
    one, two, eight = (_kv_gb_per_sequence(DSV3, 8, dp) for dp in (1, 2, 8))
    assert two == pytest.approx(one / 2, rel=1e-12)
    assert eight == pytest.approx(one / 8, rel=1e-12)


def test_dp_leaves_the_kv_of_a_gqa_model_with_enough_kv_heads():
    # 8 KV heads over tp=8: one head per device; dp=2 gives 2 heads per device for half the sequences
    assert _kv_gb_per_sequence(LLAMA70, 8, 2) == pytest.approx(_kv_gb_per_sequence(LLAMA70, 8, 1), rel=1e-12)


def test_dp_replicates_the_attention_weights_by_hand():
    # DeepSeek-V3 at tp=8: attention projections split 8 ways; with dp=8 each device holds them whole
    arch = CAT.model(DSV3).arch
    base = Scenario(model=DSV3, hardware="h200-sxm", tp=8, weight_format="fp8", engine="sglang", concurrency=1)
    w1 = estimate(base, CAT).memory.weights_gb
    w8 = estimate(base.model_copy(update={"dp": 8}), CAT).memory.weights_gb
    shape = ModelShape.from_arch(arch)
    n_attn = float(shape.n_full[0] + shape.n_sliding[0])
    attn_gb = n_attn * float(shape.p_qkv[0] + shape.p_o[0]) * 1.0 / 1e9  # fp8: one byte per weight
    assert w8 - w1 == pytest.approx(attn_gb * (1 - 1 / 8), rel=1e-9)


def test_dp_1_changes_nothing():
    scn = Scenario(model=DSV3, hardware="h200-sxm", tp=8, weight_format="fp8", engine="sglang", concurrency=64)
    a, b = estimate(scn, CAT), estimate(scn.model_copy(update={"dp": 1}), CAT)
    assert a == b


def test_dp_must_divide_tp():
    with pytest.raises(ValueError, match="dp=3 must divide tp=8"):
        Scenario(model=DSV3, hardware="h200-sxm", tp=8, dp=3)


def test_cli_and_predict_take_dp(tmp_path, capsys):
    rc = main(["estimate", "--model", DSV3, "--hardware", "h200-sxm", "--tp", "8", "--dp", "8", "--engine", "sglang",
               "--weights", "fp8", "--input-len", "4096", "--output-len", "1024", "--format", "json"])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0 and '"dp": 8' in out
    rows = [{"model": DSV3, "hardware": "h200-sxm", "engine": "sglang", "tp": "8", "dp": dp, "weight_format": "fp8",
             "input_len": "4096", "output_len": "1024", "concurrency": "8"} for dp in ("", "1", "8")]  # fmt: skip
    got = predict_rows(rows, CAT)
    assert got[0]["kv_gb_per_device"] == got[1]["kv_gb_per_device"] > got[2]["kv_gb_per_device"]
    path = tmp_path / "in.csv"
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    assert main(["predict", "--in", str(path), "--out", str(tmp_path / "out.csv")]) == 0
