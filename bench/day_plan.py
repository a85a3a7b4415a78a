"""Day plan speed: one model against the whole catalog over a 96-interval day (issue 14). Target: under 5 s.

The planner runs ONCE at the day's peak rate (its goodput per replica is each deployment's capacity); the day plan
then derives replicas, SLO misses and cost per interval for every candidate and policy, and the price options with
the crossover scan, without searching again. Prints the planner's and the day's wall-clock times separately (best of
three; the planner's CPU time too, the figure to compare on a shared machine), and `day_plan_s` (planner + day
plan + price options, the slower model's best run) last.
"""

from __future__ import annotations

import time

from llmcap.catalog.loader import load_catalog
from llmcap.load.day import preset_profile
from llmcap.plan.autoscale import day_plan
from llmcap.plan.planner import plan
from llmcap.plan.price_options import price_options
from llmcap.plan.request import PlanRequest
from llmcap.scenario import Slo

CASES = {
    "Llama-3.1-8B consumer-chat": (
        "consumer-chat",
        PlanRequest(model="meta-llama/Llama-3.1-8B-Instruct", rate_rps=10, input_len=1442, output_len=182,
                    arrival_cv=1.41, slo=Slo(ttft_ms=1500, tpot_ms=50), top=50),
    ),
    "Llama-3.3-70B business-hours": (
        "business-hours",
        PlanRequest(model="meta-llama/Llama-3.3-70B-Instruct", rate_rps=5, input_len=4096, output_len=256,
                    slo=Slo(ttft_ms=3000, tpot_ms=80), top=50),
    ),
}  # fmt: skip


def main() -> None:
    catalog = load_catalog()
    worst = 0.0
    for name, (preset, req) in CASES.items():
        prof = preset_profile(preset, req.rate_rps)
        peak = req.model_copy(update={"rate_rps": prof.peak_rate_rps})
        plan_s, day_s, cpu_s = [], [], []
        for _ in range(3):
            start, start_cpu = time.perf_counter(), time.process_time()
            p = plan(peak, catalog)
            cpu_s.append(time.process_time() - start_cpu)
            mid = time.perf_counter()
            day = day_plan(p, prof, catalog)
            price_options(day, prof, req.model, req.input_len, req.output_len, catalog)
            end = time.perf_counter()
            plan_s.append(mid - start)
            day_s.append(end - mid)
        total = min(a + b for a, b in zip(plan_s, day_s, strict=True))
        worst = max(worst, total)
        print(
            f"{name}: {prof.intervals} intervals, {p.evaluated:,} configurations, {len(day.rows)} deployment x policy "
            f"rows; planner {min(plan_s):.2f} s (cpu {min(cpu_s):.2f} s), "
            f"day plan + price options {min(day_s) * 1e3:.1f} ms"
        )
    print(f"day_plan_s={worst:.3f}")


if __name__ == "__main__":
    main()
