"""`llmcap estimate --rate ...` (open loop), cost and energy in both modes, and its error handling."""

from __future__ import annotations

import json

import pytest

from llmcap.catalog.loader import load_catalog
from llmcap.cli.main import main
from llmcap.load.rate import estimate_load
from llmcap.scenario import Pricing, Scenario, Slo, Traffic

BASE = ["estimate", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--hardware", "h100-sxm", "--weights", "fp8",
        "--kv", "fp8", "--engine", "vllm"]  # fmt: skip
LENGTHS = ["--input-len", "1024", "--output-len", "256"]
FAST = ["--requests", "1500"]
REQUIRED = {
    "ttft_ms": {"mean", "p50", "p90", "p99"},
    "tpot_ms": {"mean", "p50", "p90", "p99"},
    "e2e_ms": {"mean", "p50", "p90", "p99"},
    "throughput": {"requests_per_s", "output_tokens_per_s"},
    "cost": {"usd_per_hour", "usd_per_million_input_tokens", "usd_per_million_output_tokens", "usd_per_request"},
    "energy": {"watts", "joules_per_output_token", "kwh_per_day", "gco2e_per_million_output_tokens"},
    "bound": {"prefill", "decode"},
    "memory": {"weights_gb_per_device", "kv_gb_per_device", "max_concurrency"},
}
SCALARS = {"fits", "max_rate_rps", "goodput_rps", "slo_attainment"}
SCENARIO = Scenario(model="meta-llama/Llama-3.1-8B-Instruct", hardware="h100-sxm", weight_format="fp8", kv_format="fp8",
                    engine="vllm", input_len=1024, output_len=256)  # fmt: skip


def run_json(args: list[str], capsys) -> tuple[int, dict]:
    rc = main(args + ["--format", "json"])
    out = capsys.readouterr().out
    return rc, json.loads(out)


def error_of(args: list[str], capsys) -> str:
    rc = main(args)
    captured = capsys.readouterr()
    assert rc == 2, (rc, captured.out[-500:])
    assert "Traceback" not in captured.err
    return captured.err


def test_rate_json_has_every_interface_key_and_equals_core(capsys):
    rc, d = run_json(BASE + LENGTHS + FAST + ["--rate", "12", "--usd-per-gpu-hour", "2.5", "--ttft-ms", "300"], capsys)
    assert rc == 0
    assert set(d) >= SCALARS
    for key, sub in REQUIRED.items():
        assert sub <= set(d[key]), (key, set(d[key]))
    le = estimate_load(SCENARIO, Traffic(rate_rps=12, requests=1500), Slo(ttft_ms=300), Pricing(usd_per_gpu_hour=2.5),
                       catalog=load_catalog())  # fmt: skip
    assert d["ttft_ms"]["p90"] == pytest.approx(le.ttft_ms.p90)
    assert d["goodput_rps"] == pytest.approx(le.goodput_rps)
    assert d["cost"]["usd_per_hour"] == pytest.approx(2.5)
    assert d["energy"]["joules_per_output_token"] == pytest.approx(le.energy.joules_per_output_token)
    assert d["bound"] == {"prefill": le.bound.prefill, "decode": le.bound.decode}
    assert 0.0 <= d["slo_attainment"] <= 1.0


def keys(d: dict, prefix: str = "") -> set[str]:
    """Every dotted key of a JSON object, nested objects included (list items are not descended into)."""
    out = set()
    for k, v in d.items():
        out.add(prefix + k)
        if isinstance(v, dict) and k != "scenario":
            out |= keys(v, prefix + k + ".")
    return out


def test_both_methods_give_every_key_and_analytic_equals_core(capsys):
    args = BASE + LENGTHS + FAST + ["--rate", "12", "--usd-per-gpu-hour", "2.5", "--tpot-ms", "12"]
    rc, sim = run_json(args, capsys)
    assert rc == 0
    rc, ana = run_json(args + ["--method", "analytic"], capsys)
    assert rc == 0
    assert keys(ana) == keys(sim)
    for key, sub in REQUIRED.items():
        assert sub <= set(ana[key]), (key, set(ana[key]))
    assert sim["method"].startswith("iteration-level") and ana["method"].startswith("analytic")
    le = estimate_load(SCENARIO, Traffic(rate_rps=12, requests=1500), Slo(tpot_ms=12), Pricing(usd_per_gpu_hour=2.5),
                       method="analytic", catalog=load_catalog())  # fmt: skip
    assert ana["ttft_ms"]["p90"] == pytest.approx(le.ttft_ms.p90)
    assert ana["tpot_ms"]["mean"] == pytest.approx(le.tpot_ms.mean)
    assert ana["goodput_rps"] == pytest.approx(le.goodput_rps) and ana["max_rate_rps"] == pytest.approx(le.max_rate_rps)
    assert ana["energy"]["joules_per_output_token"] == pytest.approx(le.energy.joules_per_output_token)
    # the stated tolerances at moderate load (12 req/s, about 40% of the maximum rate)
    assert ana["tpot_ms"]["mean"] == pytest.approx(sim["tpot_ms"]["mean"], rel=0.10)
    assert ana["goodput_rps"] == pytest.approx(sim["goodput_rps"], rel=0.20)


def test_analytic_text_and_its_errors(capsys):
    assert main(BASE + LENGTHS + ["--rate", "8", "--method", "analytic"]) == 0
    out = capsys.readouterr().out
    assert "at 8 req/s (stable)" in out and "method: analytic queueing model" in out and "note: analytic method" in out
    err = error_of(BASE + LENGTHS + ["--rate", "8", "--method", "analytic", "--spec-k", "2", "--spec-alpha", "0.7"],
                   capsys)  # fmt: skip
    assert "only by the simulator" in err
    big = ["estimate", "--model", "meta-llama/Llama-3.1-405B-Instruct", "--hardware", "l4", "--input-len", "128",
           "--output-len", "16", "--rate", "1", "--method", "analytic"]  # fmt: skip
    rc, d = run_json(big, capsys)
    assert rc == 1 and d["fits"] is False and d["method"] == "analytic"  # exit 1: does not fit, either method


def test_overload_gives_null_latencies_with_a_message(capsys):
    rc, d = run_json(BASE + LENGTHS + FAST + ["--rate", "1000"], capsys)
    assert rc == 0 and d["fits"] is True and d["stable"] is False
    assert d["ttft_ms"]["p90"] is None and d["e2e_ms"]["mean"] is None
    assert any("ttft_ms.p90" in n and "null" in n for n in d["notes"])
    assert d["slo_attainment"] == 0.0


def test_does_not_fit_in_rate_mode_reports_the_reason(capsys):
    args = ["estimate", "--model", "meta-llama/Llama-3.1-405B-Instruct", "--hardware", "l4", "--input-len", "128",
            "--output-len", "16", "--rate", "1"]  # fmt: skip
    rc, d = run_json(args + FAST, capsys)
    assert rc == 1  # as in closed-loop mode: exit 1 when the scenario does not fit
    assert d["fits"] is False and "GB" in d["message"]
    assert d["ttft_ms"]["p90"] is None and d["cost"]["usd_per_hour"] is None
    for key, sub in REQUIRED.items():
        assert sub <= set(d[key]), key


def test_closed_loop_keeps_its_output_and_gains_cost_and_energy(capsys):
    rc, d = run_json(BASE + LENGTHS + ["--concurrency", "16", "--usd-per-gpu-hour", "3"], capsys)
    assert rc == 0 and d["serving"]["concurrency"] == 16 and d["status"] == "ok"
    assert d["cost"]["usd_per_hour"] == pytest.approx(3.0)
    out_tok_s = d["serving"]["output_tokens_per_s"]
    assert d["cost"]["usd_per_million_output_tokens_all_in"] == pytest.approx(3.0 / (out_tok_s * 3600) * 1e6)
    assert d["energy"]["joules_per_output_token"] == pytest.approx(d["energy"]["watts"] / out_tok_s)
    rc, default = run_json(BASE + LENGTHS, capsys)
    assert rc == 0 and default["serving"]["concurrency"] == 1 and default["cost"]["usd_per_hour"] > 0


def test_text_output_of_both_modes(capsys):
    assert main(BASE + LENGTHS + FAST + ["--rate", "8", "--region", "eu-sweden"]) == 0
    out = capsys.readouterr().out
    assert "at 8 req/s (stable)" in out and "goodput" in out and "gCO2e" in out and "eu-sweden" in out
    assert main(BASE + LENGTHS + ["--concurrency", "4", "--price-basis", "owned"]) == 0
    out = capsys.readouterr().out
    assert "concurrency 4:" in out and "cost: $" in out and "tco" in out


def test_workload_and_trace_set_the_lengths(tmp_path, capsys):
    rc, d = run_json(BASE + FAST + ["--workload", "chat", "--rate", "5"], capsys)
    assert rc == 0 and d["traffic"]["arrival"] == "gamma" and d["scenario"]["input_len"] > 1000
    trace = tmp_path / "t.csv"
    trace.write_text("timestamp,input_tokens,output_tokens\n" + "".join(f"{i},{500 + i},{40}\n" for i in range(300)))
    rc, d = run_json(BASE + FAST + ["--trace", str(trace)], capsys)
    assert rc == 0 and d["rate_rps"] == pytest.approx(300 / 299) and d["traffic"]["requests"] == 300
    assert d["scenario"]["output_len"] == 40


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--rate", "0"], "--rate"),
        (["--rate", "-3"], "--rate"),
        (["--rate", "nan"], "--rate"),
        (["--rate", "fast"], "invalid float"),
        (["--rate", "5", "--concurrency", "4"], "not both"),
        (["--arrival", "gamma"], "needs --rate"),
        (["--rate", "5", "--arrival", "gamma", "--cv", "0"], "--cv"),
        (["--rate", "5", "--arrival", "weibull"], "invalid choice"),
        (["--rate", "5", "--prefix-hit", "1.5"], "--prefix-hit"),
        (["--rate", "5", "--spec-k", "99"], "--spec-k"),
        (["--rate", "5", "--requests", "3"], "--requests"),
        (["--rate", "5", "--slo-pct", "150"], "--slo-pct"),
        (["--rate", "5", "--ttft-ms", "-1"], "--ttft-ms"),
        (["--rate", "5", "--usd-per-gpu-hour", "0"], "--usd-per-gpu-hour"),
        (["--rate", "5", "--usd-per-gpu-hour", "2", "--provider", "AWS"], "one price basis"),
        (["--rate", "5", "--provider", "Nowhere Cloud"], "no current Nowhere Cloud offering"),
        (["--rate", "5", "--offering", "no-such-offering"], "unknown cloud offering"),
        (["--rate", "5", "--region", "atlantis"], "atlantis"),
        (["--rate", "5", "--workload", "nope"], "nope"),
        (["--rate", "5", "--method", "fast"], "invalid choice"),
        (["--method", "analytic"], "needs --rate"),
        (["--rate", "5", "--method", "analytic", "--on-full", "reject"], "only by the simulator"),
    ],
)
def test_bad_flag_values_exit_2_with_a_clear_message(extra, says, capsys):
    args = BASE + ([] if "--workload" in extra else LENGTHS) + FAST + extra
    assert says in error_of(args, capsys)


def test_bad_traces_exit_2_naming_the_problem(tmp_path, capsys):
    missing = tmp_path / "missing.csv"
    assert "cannot read the trace file" in error_of(BASE + ["--trace", str(missing)], capsys)
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,input_tokens,output_tokens\n0,10,10\n1,ten,10\n")
    err = error_of(BASE + ["--trace", str(bad)], capsys)
    assert "line 3" in err and "input_tokens" in err
    cols = tmp_path / "cols.csv"
    cols.write_text("time,prompt\n0,1\n")
    assert "missing column" in error_of(BASE + ["--trace", str(cols)], capsys)
    good = tmp_path / "good.csv"
    good.write_text("timestamp,input_tokens,output_tokens\n0,10,10\n1,10,10\n")
    assert "drop --input-len" in error_of(BASE + LENGTHS + ["--trace", str(good)], capsys)
    assert "not both" in error_of(BASE + ["--trace", str(good), "--workload", "chat"], capsys)
    assert "--input-len" in error_of(BASE + ["--rate", "3"], capsys)
