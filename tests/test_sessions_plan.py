"""The planner with sessions (issue 15): prefix caching never adds computed prompt tokens or cost; hostile flags."""

from __future__ import annotations

import functools
import subprocess
import sys

import pytest

from llmcap.catalog.loader import load_catalog
from llmcap.catalog.schema import LengthDistribution, SessionSpec
from llmcap.plan.planner import plan
from llmcap.plan.request import PlanRequest
from llmcap.plan.sessions import session_traffic
from llmcap.scenario import Slo

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
SPEC = SessionSpec(turns=LengthDistribution(family="exponential", mean=6, cv=1.0, max=100), think_s=30,
                   new_tokens=150, system_prompt_tokens=500)  # fmt: skip


@functools.cache
def _plan(prefix_cache: bool, offload_gb: float = 0.0):
    req = PlanRequest(model=MODEL, rate_rps=20, output_len=200, slo=Slo(ttft_ms=1000, tpot_ms=50),
                      hardware=("h100-sxm", "l40s"), sessions=SPEC, prefix_cache=prefix_cache,
                      kv_offload_cpu_gb=offload_gb, top=5, **session_traffic(SPEC, 200, 0.0))  # fmt: skip
    return plan(req, load_catalog())


def test_session_traffic_sizes_for_the_whole_history():
    t = session_traffic(SPEC, 200, 0.0)
    # mean prompt of turn k is 500 + 150 k + 200 (k - 1); with ~6 turns per session it is far above one turn
    assert 1500 < t["input_len"] < 4000 and t["input_cv"] > 0.3


def test_prefix_caching_never_costs_more_and_never_adds_computed_tokens():
    on, off = _plan(True), _plan(False)
    assert on.candidates and off.candidates
    assert on.candidates[0].usd_per_hour <= off.candidates[0].usd_per_hour
    for c in on.candidates:
        assert 0 <= c.prefix_hit_rate < 1
        assert 1 <= c.prefill_tokens_per_request <= on.request.input_len
    for c in off.candidates:
        assert c.prefix_hit_rate == 0.0 and c.prefill_tokens_per_request == pytest.approx(off.request.input_len,
                                                                                          rel=0.02)  # fmt: skip


def test_an_offload_tier_never_lowers_a_rows_hit_rate():
    base, tier = _plan(True), _plan(True, 256.0)
    by = {(c.hardware, c.engine, c.weight_format, c.tp, c.max_seqs): c.prefix_hit_rate for c in base.candidates}
    both = [(by[k], c.prefix_hit_rate) for c in tier.candidates
            if (k := (c.hardware, c.engine, c.weight_format, c.tp, c.max_seqs)) in by]  # fmt: skip
    assert both and all(t >= b - 1e-9 for b, t in both)


def _cli(*extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "llmcap.cli.main", "plan", "--model", MODEL, "--rate", "5", "--ttft-ms", "1000",
           "--tpot-ms", "50", "--hardware", "l40s", "--output-len", "200", *extra]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (("--turns", "weibull:3"), "--turns"),
        (("--turns", "3", "--think-s", "-1"), "--think-s"),
        (("--turns", "3", "--new-tokens", "0"), "--new-tokens"),
        (("--turns", "3", "--system-prompt-tokens", "-1"), "--system-prompt-tokens"),
        (("--turns", "3", "--kv-offload", "cpu:lots"), "--kv-offload"),
        (("--input-len", "100", "--kv-offload", "cpu:8"), "--kv-offload"),
        (("--input-len", "100", "--think-s", "3"), "--think-s"),
    ],
)
def test_plan_hostile_session_flags(extra, named):
    out = _cli(*extra)
    assert out.returncode == 2 and named in out.stderr and "Traceback" not in out.stderr


def test_estimate_hostile_session_flags_name_the_flag():
    base = [sys.executable, "-m", "llmcap.cli.main", "estimate", "--model", MODEL, "--hardware", "h100-sxm",
            "--output-len", "100"]  # fmt: skip
    for extra, named in (
        (["--rate", "1", "--turns", "0"], "--turns"),
        (["--rate", "1", "--input-len", "10", "--kv-offload", "cpu:8"], "--kv-offload"),
        (["--input-len", "10", "--turns", "3"], "--turns"),  # closed loop
        (["--rate", "1", "--turns", "3", "--prefix-cache", "off", "--kv-offload", "cpu:8"], "--kv-offload"),
    ):
        out = subprocess.run(base + extra, capture_output=True, text=True, check=False)
        assert out.returncode == 2 and named in out.stderr and "Traceback" not in out.stderr, (extra, out.stderr)
