"""load.rate.assemble: one entry for both methods, equal to estimate_load, with a clear error for a missing part."""

from __future__ import annotations

import pytest

from llmcap.catalog.loader import load_catalog
from llmcap.load.rate import assemble, estimate_load
from llmcap.load.rate_prepare import prepare
from llmcap.load.rate_simulate import Simulated, goodput, max_rate, operating_point
from llmcap.load.rate_types import LoadError
from llmcap.scenario import Scenario, Slo, Traffic

CATALOG = load_catalog()
SCN = Scenario(model="Qwen/Qwen3-8B", hardware="l40s", input_len=512, output_len=128)  # generic engine, bf16
TRAFFIC = Traffic(rate_rps=2.0, requests=1000)
SLO = Slo(ttft_ms=500.0, tpot_ms=30.0)


def test_simulate_without_its_simulations_is_a_load_error():
    prep = prepare(SCN, TRAFFIC, catalog=CATALOG)
    with pytest.raises(LoadError, match="three simulations"):
        assemble(prep, 2.0, SLO, catalog=CATALOG)


def test_simulate_parts_give_the_same_estimate_as_one_call():
    prep = prepare(SCN, TRAFFIC, catalog=CATALOG)
    top = max_rate(prep)
    parts = Simulated(operating_point(prep, 2.0), top, goodput(prep, SLO, top))
    whole = estimate_load(SCN, TRAFFIC, SLO, catalog=CATALOG)
    assert whole.fits and whole.stable
    assert assemble(prep, 2.0, SLO, simulated=parts, catalog=CATALOG) == whole


def test_analytic_needs_no_simulations():
    prep = prepare(SCN, TRAFFIC, method="analytic", catalog=CATALOG)
    whole = estimate_load(SCN, TRAFFIC, SLO, method="analytic", catalog=CATALOG)
    assert whole.fits and whole.stable
    assert assemble(prep, 2.0, SLO, catalog=CATALOG) == whole
