"""`llmcap plan` end to end: JSON contract, objectives, traffic sources, clear errors."""

import json

import pytest
import yaml

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


DAY_FIELDS = {"interval_s", "rate_rps", "replicas", "gpu_hours", "usd_per_day", "usd_per_million_output_tokens",
              "slo_miss_minutes", "slo_miss_request_share", "utilization"}  # fmt: skip


def test_day_json_has_one_object_per_policy_and_pricing_rows(capsys):
    out = _json(capsys, BASE + ["--input-len", "1024", "--output-len", "256", "--rate", "6", "--day", "consumer-chat",
                                "--scale-up-s", "300", "--min-replicas", "1", "--slo-miss-budget", "0.02"])  # fmt: skip
    day = out["day"]
    assert [d["policy"] for d in day] == ["autoscaled", "static-peak", "static-p90"]
    for d in day:
        assert set(d) >= DAY_FIELDS and len(d["rate_rps"]) == len(d["replicas"]) == 96
        assert d["startup_s"] == (300 if d["policy"] == "autoscaled" else 0)
    assert sum(day[0]["rate_rps"]) / 96 == pytest.approx(6.0)
    assert out["request"]["rate_rps"] == pytest.approx(max(day[0]["rate_rps"]))  # planned at the day's peak
    assert day[0]["usd_per_day"] <= day[1]["usd_per_day"]
    assert out["pricing"] and {"option", "provider", "usd_per_day", "date_seen", "crossover_tokens_per_day"} <= set(
        out["pricing"][0]
    )
    assert out["day_profile"]["slo_miss_budget"] == 0.02


def test_day_from_a_file_and_pricing_subset(capsys, tmp_path):
    f = tmp_path / "rates.csv"
    f.write_text("time,rate_rps\n" + "".join(f"{h:02d}:00,{1 + (h >= 9) * 3}\n" for h in range(24)))
    out = _json(capsys, BASE + ["--input-len", "512", "--output-len", "128", "--day", str(f), "--pricing", "spot"])
    assert out["request"]["rate_rps"] == pytest.approx(4.0)
    assert {r["option"] for r in out["pricing"]} <= {"spot"}
    assert main(BASE + ["--input-len", "512", "--output-len", "128", "--day", str(f)]) == 0
    text = capsys.readouterr().out
    assert "recommended deployment, each policy" in text and "replica start" in text


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--day", "weekend", "--rate", "2"], "not a preset"),
        (["--day", "consumer-chat"], "--rate"),
        (["--rate", "2", "--scale-up-s", "60"], "--scale-up-s needs --day"),
        (["--day", "flat-api", "--rate", "2", "--pricing", "free"], "--pricing: unknown option"),
        (["--day", "flat-api", "--rate", "2", "--slo-miss-budget", "2"], "--slo-miss-budget"),
    ],
)
def test_bad_day_flags_exit_2_with_a_message(capsys, extra, message):
    assert main(BASE + ["--input-len", "512", "--output-len", "128", *extra]) == 2
    assert message in capsys.readouterr().err


def test_a_bad_day_file_names_its_line_and_column(capsys, tmp_path):
    bad = tmp_path / "rates.csv"
    bad.write_text("time,rate_rps\n0,1\n3600,lots\n")
    assert main(BASE + ["--input-len", "512", "--output-len", "128", "--day", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "line 3, column 'rate_rps'" in err and "Traceback" not in err


def test_k8s_export_with_a_day_takes_the_rows_autoscaled_bounds(capsys):
    args = BASE + ["--input-len", "1024", "--output-len", "256", "--rate", "6", "--day", "business-hours"]
    out = _json(capsys, args)
    first = out["candidates"][0]
    auto = next(r for r in out["day_ranking"] if r["policy"] == "autoscaled" and r["hardware"] == first["hardware"]
                and r["tp"] == first["tp"] and r["engine"] == first["engine"]
                and r["weight_format"] == first["weight_format"])  # fmt: skip
    assert main(args + ["--export", "1", "--target", "k8s"]) == 0
    hpa = next(d for d in yaml.safe_load_all(capsys.readouterr().out) if d["kind"] == "HorizontalPodAutoscaler")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (min(auto["replicas"]), max(auto["replicas"]))
