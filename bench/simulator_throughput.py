"""Simulator speed: 100,000 Poisson requests through one replica of Llama-3.1-8B on an H100 (vLLM, mixed).

Prints the set-up (step table build), the simulation time, what was simulated, and last
`requests_per_s=N` (simulated requests per second of wall time). Target: 100,000 requests in under 2 s.
"""

from __future__ import annotations

import time

import numpy as np

from llmcap.estimate.resolve import resolve
from llmcap.load.simstats import summarize
from llmcap.load.simulate import deployment, simulate
from llmcap.scenario import Scenario

N = 100_000


def main() -> None:
    scn = Scenario(model="meta-llama/Llama-3.1-8B-Instruct", hardware="h100-sxm", engine="vllm", weight_format="fp8")
    rng = np.random.default_rng(0)
    s = np.clip(np.round(rng.lognormal(np.log(800), 0.6, N)), 16, 8000)
    o = np.clip(np.round(rng.lognormal(np.log(200), 0.7, N)), 1, 2000)
    t0 = time.perf_counter()
    table, cfg = deployment(resolve(scn), input_len=s.mean(), output_len=o.mean(), max_context=16384)
    t1 = time.perf_counter()
    rate = 20.0
    arrivals = np.cumsum(rng.exponential(1 / rate, N))
    t2 = time.perf_counter()
    res = simulate(table, cfg, arrivals, s, o)
    t3 = time.perf_counter()
    summ = summarize(res, ttft_slo_s=1.0, tpot_slo_s=0.05)
    print(f"step table: {table.mixed_s.size + table.prefill_s.size} points, built in {t1 - t0:.3f} s")
    print(f"simulated {N} requests at {rate} req/s: {res.iterations} iterations, {res.span_s:.0f} s of traffic")
    print(
        f"ttft p50/p99 {summ.ttft_ms.p50:.0f}/{summ.ttft_ms.p99:.0f} ms, tpot p50 {summ.tpot_ms.p50:.1f} ms, "
        f"mean batch {summ.mean_batch:.1f}, utilization {summ.utilization:.2f}"
    )
    print(f"simulation time {t3 - t2:.3f} s")
    print(f"requests_per_s={N / (t3 - t2):.0f}")


if __name__ == "__main__":
    main()
