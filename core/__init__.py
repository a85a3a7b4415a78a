"""llmcap: plan LLM inference: memory, latency, throughput, cost and deployments that meet latency objectives.

The public API, for notebooks and scripts (the `llmcap` command and the dashboard use the same functions)::

    import llmcap

    scn = llmcap.Scenario(model="meta-llama/Llama-3.1-8B-Instruct", hardware="h100-sxm", engine="vllm",
                          input_len=1000, output_len=200, concurrency=16)
    est = llmcap.estimate(scn)                                   # closed loop: TTFT, TPOT, memory, bounds
    load = llmcap.estimate_load(scn, llmcap.Traffic(rate_rps=5), llmcap.Slo(ttft_ms=500, tpot_ms=50),
                                llmcap.Pricing(provider="AWS"), method="analytic")   # at a request rate, with cost
    best = llmcap.plan(llmcap.PlanRequest(model=scn.model, rate_rps=10, input_len=1000, output_len=200,
                                          slo=llmcap.Slo(ttft_ms=1000, tpot_ms=50)))  # cheapest deployments

Everything else lives in subpackages that follow the data flow (catalog, model, perf, estimate, economics,
load, plan, calibration, io); their names may change between versions, these do not without notice.
"""

from llmcap.catalog.loader import Catalog, CatalogError, UnknownIdError, load_catalog
from llmcap.catalog.support import Verdict, check_support
from llmcap.economics.operating_point import PointCosts, closed_loop_costs
from llmcap.estimate.predict import predict_rows
from llmcap.estimate.resolve import UnsupportedError
from llmcap.estimate.single import Estimate, estimate
from llmcap.load.rate import LoadEstimate, estimate_load
from llmcap.plan.planner import plan
from llmcap.plan.request import Plan, PlanRequest
from llmcap.scenario import Pricing, Scenario, Slo
from llmcap.scenario import Traffic as Traffic

__all__ = [
    # inputs
    "Scenario",
    "Traffic",
    "Slo",
    "Pricing",
    "PlanRequest",
    # what the library computes
    "estimate",
    "estimate_load",
    "closed_loop_costs",
    "plan",
    "predict_rows",
    "check_support",
    # results
    "Estimate",
    "LoadEstimate",
    "PointCosts",
    "Plan",
    "Verdict",
    # catalogs and errors
    "load_catalog",
    "Catalog",
    "CatalogError",
    "UnknownIdError",
    "UnsupportedError",
]
