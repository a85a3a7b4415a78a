"""What-ifs and sensitivity of the recommendation's cost."""

import pytest

from llmcap.plan.planner import cheapest, plan
from llmcap.plan.request import PlanRequest
from llmcap.plan.whatif import sensitivity, what_ifs
from llmcap.scenario import Slo


@pytest.fixture(scope="module")
def base():
    req = PlanRequest(
        model="meta-llama/Llama-3.1-8B-Instruct",
        rate_rps=10,
        input_len=1024,
        output_len=256,
        slo=Slo(ttft_ms=1000, tpot_ms=40),
        hardware=("h100-sxm", "l40s", "l4"),
        weights=("fp8",),
    )
    return plan(req)


def test_what_ifs_move_cost_the_right_way(base):
    ref = base.candidates[0].usd_per_hour
    got = {w.name: w for w in what_ifs(base)}
    assert got["prices -20%"].usd_per_hour == pytest.approx(0.8 * ref)  # same deployment, every price x0.8
    assert got["traffic x2"].usd_per_hour >= ref
    assert got["memory bandwidth +20%"].usd_per_hour <= ref
    assert got["compute +20%"].usd_per_hour <= ref


def test_price_elasticity_is_one_and_rate_elasticity_non_negative(base):
    rows = {s.input: s for s in sensitivity(base)}
    assert rows["price"].elasticity == pytest.approx(1.0)
    assert rows["request rate"].elasticity >= 0
    assert rows["TPOT objective"].elasticity <= 0  # looser objective never costs more
    assert rows["memory bandwidth"].elasticity <= 0


@pytest.mark.parametrize(
    "update",
    [
        {},
        {"mem_bw_scale": 1.4, "rate_rps": 37.0},
        {"slo": Slo(ttft_ms=1000, tpot_ms=40, e2e_ms=4000)},  # binds (l40s -> h100): screening needs percentiles
        {"allow_disagg": True, "hardware": ("h100-sxm", "l4")},
        {"slo": Slo(ttft_ms=50, tpot_ms=5)},  # nothing qualifies
        {"samples": 4, "rate_rps": 3.0},  # the planner sizes for 4 x the rate (llmcap.plan.samples)
    ],
)
def test_cheapest_is_the_plans_first_candidate(base, update):
    """The what-ifs' lean search (no fronts, goodput or power; percentiles in screening only for an e2e objective)
    picks the deployment the full planner ranks first."""
    req = base.request.model_copy(update=update)
    full = plan(req).candidates
    got = cheapest(req)
    if not full:
        assert got is None
        return
    first = full[0]
    assert got is not None
    assert (got.hardware, got.devices, got.tp, got.replicas, got.max_seqs, got.engine) == (
        first.hardware, first.devices, first.tp, first.replicas, first.max_seqs, first.engine
    )  # fmt: skip
    assert got.usd_per_hour == first.usd_per_hour and got.ttft_ms_p90 == pytest.approx(first.ttft_ms_p90)
    assert got.usd_per_answer == pytest.approx(first.usd_per_answer)
