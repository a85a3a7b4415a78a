"""`llmcap plan` end to end: JSON contract, objectives, traffic sources, clear errors."""

import json

import pytest

from llmcap.cli.main import main

LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"
BASE = [
    "plan",
    "--model",
    LLAMA_8B,
    "--hardware",
    "h100-sxm,l40s",
    "--weights",
    "fp8",
    "--ttft-ms",
    "1500",
    "--tpot-ms",
    "50",
]


def _json(capsys, args):
    assert main(args + ["--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_contract_and_objectives(capsys):
    out = _json(capsys, BASE + ["--input-len", "1024", "--output-len", "256", "--rate", "8", "--allow-disagg"])
    assert set(out) >= {"candidates", "rejected", "pareto", "elapsed_s"}
    cands = out["candidates"]
    assert cands
    need = {
        "hardware",
        "devices",
        "tp",
        "pp",
        "ep",
        "replicas",
        "weight_format",
        "kv_format",
        "mode",
        "ttft_ms_p90",
        "tpot_ms_p90",
        "goodput_rps",
        "usd_per_hour",
        "usd_per_million_output_tokens",
    }
    for c in cands:
        assert need <= set(c)
        assert c["ttft_ms_p90"] <= 1500 and c["tpot_ms_p90"] <= 50
        assert c["goodput_rps"] >= 8
    costs = [c["usd_per_hour"] for c in cands]
    assert costs == sorted(costs)


def test_workload_preset_and_trace(capsys, tmp_path):
    out = _json(capsys, BASE + ["--workload", "chat", "--rate", "4"])
    assert out["request"]["workload"] == "chat" and out["request"]["input_cv"] > 0
    trace = tmp_path / "t.csv"
    rows = ["timestamp,input_tokens,output_tokens"] + [f"{i * 0.5},{800 + 10 * i},{100 + i}" for i in range(40)]
    trace.write_text("\n".join(rows) + "\n")
    out = _json(capsys, BASE + ["--trace", str(trace)])
    assert out["request"]["rate_rps"] == pytest.approx(40 / 19.5, rel=0.05)  # 40 requests over 19.5 s
    assert out["request"]["input_len"] == pytest.approx(800 + 10 * 19.5)


def test_csv_and_table(capsys):
    assert main(BASE + ["--input-len", "512", "--output-len", "128", "--rate", "2", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("hardware,devices,tp") and len(lines) >= 2
    assert main(BASE + ["--input-len", "512", "--output-len", "128", "--rate", "2", "--what-if"]) == 0
    text = capsys.readouterr().out
    assert "cheapest first" in text and "what-ifs" in text and "sensitivity" in text


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--input-len", "512", "--output-len", "128"], "--rate is required"),
        (["--workload", "chat", "--input-len", "5", "--rate", "1"], "exactly one of"),
        (["--workload", "nope", "--rate", "1"], "nope"),
        (["--input-len", "512", "--output-len", "128", "--rate", "-3"], "rate_rps"),
    ],
)
def test_bad_flags_exit_2_with_a_message(capsys, extra, message):
    assert main(BASE + extra) == 2
    assert message in capsys.readouterr().err


def test_bad_trace_is_a_clear_error(capsys, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,input_tokens,output_tokens\n0,=cmd|' /C calc'!A0,5\n")
    assert main(BASE + ["--trace", str(bad), "--rate", "1"]) == 2
    err = capsys.readouterr().err
    assert "line 2" in err and "Traceback" not in err
