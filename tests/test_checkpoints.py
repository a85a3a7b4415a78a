"""Published checkpoints (catalogs/models/*/model.yaml `checkpoints:`) resolve to their base architecture with their
format preselected, in the library, `llmcap estimate` and `llmcap predict`."""

from __future__ import annotations

import json

import pytest

from llmcap.catalog.loader import load_catalog
from llmcap.cli.main import main
from llmcap.estimate.predict import predict_rows

CAT = load_catalog()
CHECKPOINTS = sorted((c.id, mid) for mid, m in CAT.models.items() for c in m.meta.checkpoints)
REQUIRED = [
    "nvidia/DeepSeek-R1-0528-FP4-V2",
    "amd/DeepSeek-R1-0528-MXFP4-Preview",
    "Qwen/Qwen3-4B-Instruct-2507",
    "Qwen/Qwen3-Coder-30B-A3B-Instruct",
    "meta-llama/Llama-2-70b-chat-hf",
]


def test_the_issue_s_checkpoints_are_there():
    assert len(CHECKPOINTS) >= 40
    missing = [c for c in REQUIRED if CAT.checkpoint(c) is None]
    assert not missing, missing


@pytest.mark.parametrize(("ckpt", "base"), CHECKPOINTS)
def test_each_checkpoint_resolves_to_its_base_with_its_format(ckpt, base):
    assert CAT.model(ckpt).meta.id == base
    assert CAT.model(ckpt.upper()).meta.id == base  # ids are case-insensitive
    entry = CAT.checkpoint(ckpt)
    assert CAT.default_weights(ckpt) == entry.weights and entry.weights in CAT.formats
    assert CAT.default_kv(ckpt) == entry.kv


def test_a_base_id_implies_bf16_and_no_kv_choice():
    assert CAT.default_weights("meta-llama/Llama-3.1-8B-Instruct") == "bf16"
    assert CAT.default_kv("meta-llama/Llama-3.1-8B-Instruct") is None


def test_estimate_takes_the_checkpoint_s_format(capsys):
    rc = main(["estimate", "--model", "nvidia/DeepSeek-R1-0528-FP4-V2", "--hardware", "b200-sxm", "--tp", "8",
               "--engine", "trtllm", "--input-len", "1000", "--output-len", "200", "--format", "json"])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["scenario"]["weight_format"] == "nvfp4" and out["math"] == "fp4"
    rc = main(["estimate", "--model", "nvidia/DeepSeek-R1-0528-FP4-V2", "--hardware", "b200-sxm", "--tp", "8",
               "--engine", "trtllm", "--weights", "fp8", "--input-len", "1000", "--output-len", "200",
               "--format", "json"])  # fmt: skip
    assert json.loads(capsys.readouterr().out)["scenario"]["weight_format"] == "fp8"  # an explicit choice wins


def test_predict_takes_the_checkpoint_s_format_where_the_column_is_empty():
    row = {"model": "amd/DeepSeek-R1-0528-MXFP4-Preview", "hardware": "mi355x", "engine": "vllm", "tp": "8",
           "weight_format": "", "input_len": "1000", "output_len": "200", "concurrency": "4"}  # fmt: skip
    out = predict_rows([row], CAT)[0]
    assert out["status"] == "ok", out["message"]
    # mxfp4 weights: about 4.25 bits for 671B parameters over 8 devices, far below bf16's 168 GB per device
    assert out["weights_gb_per_device"] < 60
