"""Price options (llmcap.plan.price_options): sourced and dated catalog entries, spot replicas for interruptions,
hosted API bills and the crossover computed by hand."""

from __future__ import annotations

import numpy as np
import pytest
from test_day_autoscale import cand

from llmcap.catalog.loader import load_catalog
from llmcap.load.day import flat_profile, preset_profile
from llmcap.plan import price_options as po_mod
from llmcap.plan.autoscale import day_plan
from llmcap.plan.price_options import (
    OPTIONS,
    PriceOptionError,
    crossover,
    options_catalog,
    parse_options,
    price_options,
    spot_extra_replicas,
)
from llmcap.plan.request import Plan, PlanRequest
from llmcap.scenario import Slo

CAT = load_catalog()
LLAMA_70B = "meta-llama/Llama-3.3-70B-Instruct"


def test_every_option_price_is_sourced_dated_and_points_at_the_catalog():
    opts = options_catalog()
    assert opts.spot and opts.hosted
    for s in opts.spot:
        assert s.offering in CAT.cloud_prices and s.date_seen and len(s.source) > 20
        assert s.usd_per_hour < CAT.cloud_prices[s.offering].usd_per_hour  # spot is a discount on that instance
    for h in opts.hosted:
        assert CAT.model(h.model).meta.id == h.model and h.date_seen and len(h.source) > 20
    for c in opts.commitments:
        assert c.offering in CAT.cloud_prices and c.date_seen
    assert opts.spot_interruptions.estimated  # no provider publishes one for these instances: marked estimated


def test_more_interruptions_never_need_fewer_spot_replicas():
    reps = np.arange(0, 400)
    last = np.zeros_like(reps)
    for f in (0.0, 0.05, 0.2, 1.0, 5.0, 30.0, 100.0):
        extra = spot_extra_replicas(reps, f, 600.0)
        assert (extra >= last).all()
        last = extra
    assert spot_extra_replicas(np.array([0]), 50.0, 600.0)[0] == 0
    assert spot_extra_replicas(np.array([100]), 0.0, 600.0)[0] == 0
    # 100 replicas, 100 interruptions per instance-month, 1 hour to replace: mean 100 x 100/730 = 13.7 down
    assert spot_extra_replicas(np.array([100]), 100.0, 3600.0)[0] > 13.7


def test_crossover_by_hand():
    tokens = np.array([1.0, 2.0, 3.0, 4.0])
    self_cost = np.array([10.0, 10.0, 10.0, 10.0])
    # API at $4 per token: dearer than self-hosting from 10 / 4 = 2.5 tokens on
    assert crossover(tokens, self_cost, 4.0 * tokens) == pytest.approx(2.5)
    # API at $2.5 per token: equal only at 4 tokens
    assert crossover(tokens, self_cost, 2.5 * tokens) == pytest.approx(4.0)
    # API at $1 per token: self-hosting is never cheaper in the scan
    assert crossover(tokens, self_cost, 1.0 * tokens) is None
    # self-hosting cheaper everywhere: the scan's first point
    assert crossover(tokens, self_cost, 100.0 * tokens) == 1.0


def test_hosted_bill_and_crossover_for_a_flat_day_by_hand():
    # One h100-sxm replica serving 2 req/s of 1000 in / 200 out tokens, a flat day at 1 req/s.
    # Together AI bills 0.88 $/M both ways: 1 req/s x 86400 s x 1200 tokens x 0.88 / 1e6 = $91.2384 a day.
    req = PlanRequest(model=LLAMA_70B, rate_rps=1.0, input_len=1000, output_len=200, slo=Slo(ttft_ms=2000, tpot_ms=50))
    plan = Plan(request=req, candidates=[cand(2.0, 1)], rejected=[], pareto=[], evaluated=1, elapsed_s=0)
    prof = flat_profile(1.0)
    day = day_plan(plan, prof, CAT)
    po = price_options(day, prof, LLAMA_70B, 1000, 200, CAT, ("on-demand", "hosted"))
    (hosted,) = [r for r in po.rows if r.option == "hosted"]
    assert hosted.usd_per_day == pytest.approx(86400 * 1200 * 0.88 / 1e6)
    assert hosted.date_seen == "2026-05-08"
    # Self-hosting at s x this traffic costs ceil(s x 1 / 2) replicas x the cheapest h100-sxm replica-hour x 24;
    # the API costs s x 91.2384. The replica price comes from the catalog: the cheapest one-replica on-demand day.
    cheapest_day = min(r.usd_per_day for r in po.rows if r.option == "on-demand")
    per_replica_day = cheapest_day  # one replica all day at 1 req/s
    # crossover: the smallest s with ceil(s / 2) x per_replica_day <= s x 91.2384 for every larger s in the scan;
    # at s <= 2 one replica: s >= per_replica_day / 91.2384 = s*; for s in (2k, 2k + 2], (k + 1) replicas cost no
    # more than the API when s >= (k + 1) s*, true for every k >= 1 once s* <= 1.
    s_star = per_replica_day / (86400 * 1200 * 0.88 / 1e6)
    assert s_star < 1  # one H100 a day costs less than this day at the API, so every further replica pays too
    expected_tokens = s_star * 86400 * 200  # output tokens per day at s_star x the traffic
    # between two scan points both costs are linear in tokens (one replica), so the interpolated crossing is exact
    assert hosted.crossover_tokens_per_day == pytest.approx(expected_tokens, rel=1e-9)


def test_cheapest_of_each_class_and_missing_classes_say_why():
    prof = preset_profile("business-hours", 4.0)
    req = PlanRequest(model=LLAMA_70B, rate_rps=prof.peak_rate_rps, input_len=1000, output_len=200,
                      slo=Slo(ttft_ms=2000, tpot_ms=50))  # fmt: skip
    plan = Plan(request=req, candidates=[cand(2.0, 5), cand(1.5, 6, hardware="h200-sxm")], rejected=[], pareto=[],
                evaluated=2, elapsed_s=0)  # fmt: skip
    day = day_plan(plan, prof, CAT)
    po = price_options(day, prof, LLAMA_70B, 1000, 200, CAT)
    classes = {r.option for r in po.rows}
    assert {"on-demand", "spot", "owned", "hosted"} <= classes
    for option in classes:
        rows = [r for r in po.rows if r.option == option]
        best = [r for r in rows if r.cheapest_in_class]
        assert best and all(best[0].usd_per_day <= r.usd_per_day for r in rows)
    assert any("reserved-1y" in n for n in po.notes)  # no sourced commitment price: said, not invented
    assert all(r.date_seen for r in po.rows if r.option in ("spot", "hosted"))


def test_parse_options():
    assert parse_options(None) == OPTIONS
    assert parse_options("spot, hosted,spot") == ("spot", "hosted")
    with pytest.raises(PriceOptionError, match="--pricing: unknown option"):
        parse_options("spot,cheap")


def test_a_commitment_bills_the_peak_all_day(monkeypatch):
    # No commitment price is sourced yet (catalogs/prices/options.yaml lists none), so this injects one, for a test
    # only, to check the arithmetic: a 1-year commitment on the 8-GPU p5.48xlarge at $30/instance-hour bills the day's
    # peak replicas every hour. Flat 4 req/s at 2 req/s per one-GPU replica: 2 replicas at the peak, one instance
    # (8 GPUs hold both), 24 h x $30 = $720/day.
    opts = po_mod.options_catalog()
    fake = po_mod.Commitment(offering="aws-p5-48xlarge-us-east-1-2026-07", term_years=1, usd_per_hour=30.0,
                             date_seen="2026-12-01", source="test only")  # fmt: skip
    monkeypatch.setattr(po_mod, "options_catalog", lambda: opts.model_copy(update={"commitments": [fake]}))
    prof = flat_profile(4.0)
    req = PlanRequest(model=LLAMA_70B, rate_rps=4.0, input_len=1000, output_len=200, slo=Slo(ttft_ms=2000, tpot_ms=50))
    plan = Plan(request=req, candidates=[cand(2.0, 2)], rejected=[], pareto=[], evaluated=1, elapsed_s=0)
    day = day_plan(plan, prof, CAT)
    po = price_options(day, prof, LLAMA_70B, 1000, 200, CAT, wanted=("reserved-1y",))
    rows = [r for r in po.rows if r.option == "reserved-1y"]
    assert len(rows) == 1 and rows[0].replicas_peak == 2
    assert rows[0].usd_per_day == pytest.approx(720.0)
    assert not any("reserved-1y" in n for n in po.notes)
