"""QueueResult.p_empty against the closed form of a birth-death chain with a constant service rate.

With X(n) = mu for every n the flow-equivalent server is an M/M/1 queue (Poisson arrivals) whose idle
probability is 1 - rho, rho = lambda / mu; llmcap.load.queueing raises each birth-death ratio to beta = 2 / (ca^2 + 1)
for an arrival cv ca, so the chain is geometric in rho^beta and P(empty) = 1 - rho^beta.
"""

import numpy as np
import pytest

from llmcap.load.queueing import GRID, LoadCurve, analyze


def _constant_rate_curve(mu_rps: float, replicas: float = 1.0) -> LoadCurve:
    n = np.arange(1.0, GRID + 1.0)[None, :]  # consecutive integers: the grid holds every state exactly
    return LoadCurve(
        n=n,
        ttft_s=np.full_like(n, 0.1),
        tpot_s=np.full_like(n, 0.01),
        rate=np.full_like(n, mu_rps),
        output_len=np.array([10.0]),
        replicas=np.array([replicas]),
        fits=np.array([True]),
    )


@pytest.mark.parametrize("rho", [0.1, 0.5, 0.9])
def test_p_empty_is_one_minus_rho_for_poisson_arrivals(rho):
    q = analyze(_constant_rate_curve(2.0), 2.0 * rho, arrival_cv=1.0)
    assert q.p_empty[0] == pytest.approx(1.0 - rho, rel=1e-9)


@pytest.mark.parametrize("cv", [0.5, 2.0])
def test_p_empty_follows_the_diffusion_exponent_for_bursty_arrivals(cv):
    rho = 0.6
    beta = 2.0 / (cv**2 + 1.0)
    q = analyze(_constant_rate_curve(4.0), 4.0 * rho, arrival_cv=cv)
    assert q.p_empty[0] == pytest.approx(1.0 - rho**beta, rel=1e-9)


def test_p_empty_is_per_replica():
    # two replicas split 3 req/s: each sees 1.5 req/s against mu = 2, and a Poisson stream's cv^2 halves
    rho, beta = 0.75, 2.0 / (1.0 / 2 + 1.0)
    q = analyze(_constant_rate_curve(2.0, replicas=2.0), 3.0, arrival_cv=1.0)
    assert q.p_empty[0] == pytest.approx(1.0 - rho**beta, rel=1e-9)


def test_p_empty_is_zero_beyond_the_maximum_rate():
    q = analyze(_constant_rate_curve(2.0), 2.5, arrival_cv=1.0)
    assert not q.stable[0]
    assert q.p_empty[0] == 0.0
