"""Cost: whole-instance billing, offering choice, TCO and per-token attribution, worked by hand."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest

from llmcap.catalog.loader import UnknownIdError, load_catalog
from llmcap.catalog.schema import CloudOffering
from llmcap.economics.cost import (
    CostError,
    cheapest,
    cloud_cost,
    instances_needed,
    offerings_for,
    purchase_price,
    tco_cost,
    tco_usd_per_device_hour,
    unit_costs,
    user_cost,
)


def offer(oid: str, per_instance: int, usd_per_hour: float, provider: str = "TestCloud", superseded=False):
    return CloudOffering(
        id=oid,
        provider=provider,
        instance=oid,
        hardware="h100-sxm",
        devices_per_instance=per_instance,
        usd_per_hour=usd_per_hour,
        usd_per_device_hour=usd_per_hour / per_instance,
        region="test-1",
        date_seen=dt.date(2026, 1, 1),
        source="hand-made test offering",
        superseded=superseded,
    )


EIGHT = offer("eight", 8, 98.32)  # 12.29 $/GPU-hour
ONE = offer("one", 1, 14.00, provider="Other")
OLD = offer("old-one", 1, 1.00, superseded=True)


@pytest.fixture
def catalog():
    real = load_catalog()
    return dataclasses.replace(real, cloud_prices={o.id: o for o in (EIGHT, ONE, OLD)})


def test_three_devices_on_an_eight_gpu_instance_bill_one_instance(catalog):
    c = cloud_cost("h100-sxm", 3, offering_id="eight", catalog=catalog)
    # ceil(3 / 8) = 1 instance at 98.32 $/h; 8 devices billed, 5 of them idle
    assert c.instances == 1
    assert c.usd_per_hour == pytest.approx(98.32)
    assert c.devices_billed == 8
    assert c.usd_per_device_hour == pytest.approx(12.29)
    assert "5 idle" in c.notes[0]


def test_nine_devices_bill_two_instances(catalog):
    c = cloud_cost("h100-sxm", 9, offering_id="eight", catalog=catalog)
    assert (c.instances, c.devices_billed, c.usd_per_hour) == (2, 16, pytest.approx(196.64))


def test_default_is_the_cheapest_current_offering_for_the_count(catalog):
    # single-device replicas: 3 x 14.00 = 42.00 beats one 8-GPU instance (98.32)
    assert cloud_cost("h100-sxm", 3, catalog=catalog).offering_id == "one"
    # 7 x 14 = 98.00 < 98.32, but 8 x 14 = 112.00 > 98.32
    assert cloud_cost("h100-sxm", 7, catalog=catalog).usd_per_hour == pytest.approx(98.00)
    assert cloud_cost("h100-sxm", 8, catalog=catalog).offering_id == "eight"
    # the superseded 1.00 $/h row is only used when asked for
    assert cloud_cost("h100-sxm", 1, include_superseded=True, catalog=catalog).offering_id == "old-one"


def test_a_tensor_parallel_replica_stays_inside_one_instance(catalog):
    # tp=3 cannot be spread over 1-GPU instances while an 8-GPU instance exists
    c = cloud_cost("h100-sxm", 3, devices_per_replica=3, catalog=catalog)
    assert (c.offering_id, c.usd_per_hour) == ("eight", pytest.approx(98.32))
    # two tp=4 replicas share one 8-GPU instance; three need two instances
    assert cloud_cost("h100-sxm", 8, devices_per_replica=4, offering_id="eight", catalog=catalog).instances == 1
    assert cloud_cost("h100-sxm", 12, devices_per_replica=4, offering_id="eight", catalog=catalog).instances == 2
    with pytest.raises(CostError, match="not a whole number of 4-device replicas"):
        cloud_cost("h100-sxm", 6, devices_per_replica=4, catalog=catalog)


def test_instances_needed_vectorized_by_hand():
    replicas = np.array([1, 3, 8, 9, 2, 3])
    per_replica = np.array([1, 1, 1, 1, 3, 16])
    # 1-dev: ceil(n/8); tp=3: two replicas per 8-GPU instance -> 1; tp=16: 2 instances each -> 6
    assert instances_needed(replicas, per_replica, 8).tolist() == [1, 1, 1, 2, 1, 6]


def test_cheapest_vectorized_over_counts():
    usd, idx = cheapest([EIGHT, ONE], np.array([1, 7, 8, 16]))
    assert usd.tolist() == pytest.approx([14.0, 98.0, 98.32, 196.64])
    assert idx.tolist() == [1, 1, 0, 0]


def test_provider_filter_and_messages(catalog):
    assert cloud_cost("h100-sxm", 1, provider="other", catalog=catalog).offering_id == "one"
    with pytest.raises(CostError, match="no current AWS offering for h100-sxm; providers with one: Other, TestCloud"):
        offerings_for("h100-sxm", "AWS", catalog=catalog)
    with pytest.raises(CostError, match="no current cloud offering for l40s"):
        cloud_cost("l40s", 1, catalog=catalog)
    with pytest.raises(CostError, match="unknown cloud offering 'nope'"):
        cloud_cost("h100-sxm", 1, offering_id="nope", catalog=catalog)
    with pytest.raises(UnknownIdError, match="did you mean h100-sxm"):
        cloud_cost("h100-sx", 1, catalog=catalog)
    with pytest.raises(CostError, match="whole number >= 1"):
        cloud_cost("h100-sxm", 0, catalog=catalog)


def test_offering_for_another_device_is_refused():
    with pytest.raises(CostError, match="is for h100-sxm, not h200-sxm"):
        cloud_cost("h200-sxm", 8, offering_id="aws-p5-48xlarge-us-east-1-2026-07")


def test_real_catalog_has_a_current_h100_price():
    c = cloud_cost("h100-sxm", 8, provider="AWS")
    assert c.basis == "cloud" and c.provider == "AWS" and c.usd_per_hour > 0 and c.source


def test_user_price():
    c = user_cost(4, 2.5)
    assert (c.usd_per_hour, c.devices_billed, c.basis) == (10.0, 4, "user")
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(CostError, match=r"\$/GPU-hour"):
            user_cost(4, bad)


def test_tco_by_hand():
    # 30,000 $ over 4 years: 30000 / 35040 h = 0.856164 $/h; 700 W * 1.5 PUE * 0.10 $/kWh = 0.105 $/h
    c = tco_cost("h100-sxm", 2, purchase_usd=30_000, years=4, power_w=700, pue=1.5, usd_per_kwh=0.10)
    assert c.usd_per_device_hour == pytest.approx(0.961164, abs=1e-6)
    assert c.usd_per_hour == pytest.approx(1.922329, abs=1e-6)
    assert c.breakdown_usd_per_hour["capital"] == pytest.approx(1.712329, abs=1e-6)
    assert c.breakdown_usd_per_hour["electricity"] == pytest.approx(0.21, abs=1e-9)
    assert tco_usd_per_device_hour(np.array([30_000, 0]), 4, 700, 1.5, 0.10) == pytest.approx(
        [0.961164, 0.105], abs=1e-6
    )


def test_tco_defaults_from_catalog_and_missing_tdp():
    c = tco_cost("h100-sxm", 1)
    assert any("TDP" in n for n in c.notes)
    usd, rows = purchase_price("h100-sxm")
    assert usd > 0 and rows
    no_tdp = tco_cost("a10g", 1, purchase_usd=5000, years=5, pue=1.2, usd_per_kwh=0.1)
    assert no_tdp.breakdown_usd_per_hour["electricity"] == 0.0
    assert no_tdp.usd_per_hour == pytest.approx(5000 / (5 * 8760))
    assert "no TDP" in no_tdp.notes[0]


def test_tco_bad_inputs():
    with pytest.raises(CostError, match="no purchase price for a10g"):
        tco_cost("a10g", 1)
    with pytest.raises(CostError, match="PUE must be a number >= 1"):
        tco_cost("h100-sxm", 1, pue=0.5)
    with pytest.raises(CostError, match="purchase price must be a positive number"):
        tco_cost("h100-sxm", 1, purchase_usd=-3)


def test_unit_costs_by_hand():
    u = unit_costs(
        98.32,
        requests_per_s=2.0,
        input_tokens_per_s=2048.0,
        output_tokens_per_s=512.0,
        prefill_time_share=0.2,
        devices_used=3,
        devices_billed=8,
        capacity_used=0.5,
    )
    # all-in: 98.32 / (512 * 3600) * 1e6 = 53.342014
    assert u.usd_per_million_output_tokens_all_in == pytest.approx(53.342014, abs=1e-6)
    # split: output gets 80% of the hour -> 42.673611; input 20% / (2048 * 3600) * 1e6 -> 2.667101
    assert u.usd_per_million_output_tokens == pytest.approx(42.673611, abs=1e-6)
    assert u.usd_per_million_input_tokens == pytest.approx(2.667101, abs=1e-6)
    assert u.usd_per_request == pytest.approx(98.32 / 7200)
    # 1 - 3/8 * 0.5 = 0.8125 of what is paid for sits idle
    assert u.idle_share == pytest.approx(0.8125)


def test_split_charges_add_up_to_the_bill():
    rng = np.random.default_rng(0)
    usd = rng.uniform(1, 100, 1000)
    tin, tout, share = rng.uniform(10, 1e5, 1000), rng.uniform(10, 1e4, 1000), rng.uniform(0, 1, 1000)
    u = unit_costs(usd, requests_per_s=1.0, input_tokens_per_s=tin, output_tokens_per_s=tout, prefill_time_share=share)
    per_hour = (u.usd_per_million_input_tokens * tin + u.usd_per_million_output_tokens * tout) * 3600 / 1e6
    assert per_hour == pytest.approx(usd)


def test_zero_throughput_costs_infinity():
    u = unit_costs(10.0, requests_per_s=0.0, input_tokens_per_s=0.0, output_tokens_per_s=0.0, prefill_time_share=0.5)
    assert np.isinf(u.usd_per_request) and np.isinf(u.usd_per_million_output_tokens_all_in)
