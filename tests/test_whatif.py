"""What-ifs and sensitivity of the recommendation's cost."""

import pytest

from llmcap.plan.planner import plan
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
