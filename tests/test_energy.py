"""Energy: power from utilization, J/token, kWh/day and carbon, worked by hand; no TDP means no figure."""

from __future__ import annotations

import numpy as np
import pytest

from llmcap.catalog.loader import UnknownIdError, load_catalog
from llmcap.economics.energy import (
    carbon_intensity,
    device_power,
    energy,
    estimate_energy,
    power_profile,
    step_power_w,
)


def test_step_power_by_hand():
    # idle 100 W, memory-bound 300 W, compute-bound 700 W
    assert step_power_w(100, 300, 700, 0.0, 0.0) == pytest.approx(100.0)
    assert step_power_w(100, 300, 700, 1.0, 0.0) == pytest.approx(700.0)
    assert step_power_w(100, 300, 700, 0.0, 1.0) == pytest.approx(300.0)
    # 100 + 600 * 0.2 + 200 * 0.7 = 360 W while busy; 80% busy -> 0.8 * 360 + 0.2 * 100 = 308 W
    assert step_power_w(100, 300, 700, 0.2, 0.7, busy_fraction=0.8) == pytest.approx(308.0)


def test_step_power_shares_are_bounded():
    # shares summing to 2 are scaled to 0.5 + 0.5: 100 + 300 + 100 = 500 W
    assert step_power_w(100, 300, 700, 1.0, 1.0) == pytest.approx(500.0)
    assert step_power_w(100, 300, 700, -1.0, 2.0) == pytest.approx(300.0)


def test_power_rises_with_utilization_and_stays_within_idle_and_tdp():
    c, m = np.meshgrid(np.linspace(0, 1, 21), np.linspace(0, 1, 21))
    p = step_power_w(105, 301, 700, c, m)
    assert p.min() >= 105 - 1e-9 and p.max() <= 700 + 1e-9
    assert np.all(np.diff(step_power_w(105, 301, 700, np.linspace(0, 1, 50), 0.0)) > 0)
    assert np.all(np.diff(step_power_w(105, 301, 700, 0.2, 0.5, np.linspace(0, 1, 50))) > 0)


def test_energy_by_hand():
    # 2 devices at 400 W + 6 billed-but-idle devices at 100 W = 1400 W; PUE 1.5 -> 2100 W at the meter
    e = energy(400.0, 2, 1000.0, gco2e_per_kwh=300.0, pue=1.5, idle_devices=6, idle_w_per_device=100.0)
    assert e.watts == pytest.approx(1400.0)
    assert e.facility_watts == pytest.approx(2100.0)
    assert e.joules_per_output_token == pytest.approx(1.4)  # 1400 W / 1000 tok/s
    assert e.kwh_per_day == pytest.approx(50.4)  # 2.1 kW * 24 h
    # 2100 J/s / 1000 tok/s = 2.1 J/tok -> 2.1e6 J per 1M tokens = 0.58333 kWh -> * 300 g = 175 g
    assert e.gco2e_per_million_output_tokens == pytest.approx(175.0)
    assert e.gco2e_per_day == pytest.approx(15120.0)


def test_energy_vectorized_and_zero_throughput():
    e = energy(np.array([300.0, 300.0]), 1, np.array([100.0, 0.0]), gco2e_per_kwh=400.0, pue=1.0)
    assert e.joules_per_output_token[0] == pytest.approx(3.0)
    assert np.isinf(e.joules_per_output_token[1]) and np.isinf(e.gco2e_per_million_output_tokens[1])


def test_h100_power_levels_from_the_catalog():
    # catalogs/power.yaml data-center profile: idle 0.15, memory-bound 0.43, compute-bound 1.0 of TDP 700 W
    p = device_power(load_catalog().device("h100-sxm"))
    assert (p.idle_w, p.memory_bound_w, p.compute_bound_w) == pytest.approx((105.0, 301.0, 700.0))
    assert p.profile == "datacenter_gpu" and p.notes == []


def test_estimate_energy_by_hand():
    # H100: busy step 105 + 595 * 0.2 + 196 * 0.7 = 361.2 W; 80% busy -> 309.96 W per device
    est = estimate_energy(
        load_catalog().device("h100-sxm"),
        2,
        1000.0,
        compute_share=0.2,
        memory_share=0.7,
        busy_fraction=0.8,
        region="eu-france",
        pue=1.2,
    )
    assert est.watts_per_device == pytest.approx(309.96)
    assert est.watts == pytest.approx(619.92)
    assert est.joules_per_output_token == pytest.approx(0.61992)
    assert est.kwh_per_day == pytest.approx(619.92 * 1.2 * 24 / 1000)
    # 619.92 W * 1.2 / 1000 tok/s = 0.743904 J/tok -> 0.206640 kWh per 1M tokens * 15.83 g/kWh (Paris)
    assert est.gco2e_per_million_output_tokens == pytest.approx(3.271111, abs=1e-5)
    assert (est.region, est.gco2e_per_kwh, est.pue) == ("eu-france", 15.83, 1.2)


def test_device_without_tdp_gets_no_power_figure():
    est = estimate_energy(load_catalog().device("tpu-v5e"), 4, 500.0, compute_share=0.5, memory_share=0.5)
    assert est.watts is None and est.joules_per_output_token is None and est.gco2e_per_million_output_tokens is None
    assert any("no TDP" in n for n in est.notes)
    assert device_power(load_catalog().device("tpu-v5e")).known is False


def test_kinds_without_a_profile_say_so():
    assert power_profile("apple_soc").kind == "default"
    rtx = device_power(load_catalog().device("rtx-4090"))
    assert rtx.profile == "default" and "no measured power profile" in rtx.notes[0]


def test_carbon_region_lookup():
    assert carbon_intensity("EU_France").gco2e_per_kwh == pytest.approx(15.83)
    with pytest.raises(UnknownIdError, match="unknown carbon region 'eu-fr'; did you mean eu-frankfurt, eu-france"):
        carbon_intensity("eu-fr")


def test_bad_inputs():
    h100 = load_catalog().device("h100-sxm")
    with pytest.raises(ValueError, match="PUE must be within"):
        estimate_energy(h100, 1, 1.0, compute_share=0.1, memory_share=0.1, pue=0.9)
    with pytest.raises(ValueError, match="devices must be >= 1"):
        estimate_energy(h100, 0, 1.0, compute_share=0.1, memory_share=0.1)


def test_catalog_defaults_are_sane():
    d = load_catalog().power.defaults
    assert 1.0 <= d.pue <= 2.0 and 0.01 < d.usd_per_kwh < 1.0 and 1 <= d.amortization_years <= 10
