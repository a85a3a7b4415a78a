"""Traffic: arrival processes match their rate and burstiness, lengths their distributions, seeds repeat."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from llmcap.catalog.loader import load_catalog
from llmcap.catalog.schema import LengthDistribution
from llmcap.load.trace import parse_trace
from llmcap.load.traffic import (
    TrafficError,
    interarrival_s,
    replay_trace,
    requests,
    sample_lengths,
    spread,
    summarize,
    workload_requests,
)

TRACES = Path(__file__).parent / "data" / "traces"
N = 200_000


def test_poisson_rate_and_cv():
    req = requests(5.0, n=N, arrival="poisson", seed=1)
    gaps = np.diff(req.arrival_s, prepend=0.0)
    # mean gap 1/5 s with std 1/5 / sqrt(N) -> 5 standard errors is 0.0022 s
    assert abs(gaps.mean() - 0.2) < 5 * 0.2 / math.sqrt(N)
    assert summarize(req).interarrival_cv == pytest.approx(1.0, abs=0.02)
    assert summarize(req).rate_rps == pytest.approx(5.0, rel=0.02)


@pytest.mark.parametrize("cv", [0.5, 1.41, 3.0])
def test_gamma_cv_and_rate(cv):
    gaps = interarrival_s(N, 2.0, "gamma", cv, np.random.default_rng(7))
    assert gaps.mean() == pytest.approx(0.5, rel=0.03)
    assert gaps.std() / gaps.mean() == pytest.approx(cv, rel=0.05)


def test_poisson_counts_in_windows_have_variance_equal_to_mean():
    # a Poisson process puts Poisson(rate * w) arrivals in each window: variance / mean = 1
    req = requests(10.0, duration_s=20_000.0, seed=3)
    counts = np.bincount((req.arrival_s // 1.0).astype(int), minlength=20_000)
    assert counts.mean() == pytest.approx(10.0, rel=0.01)
    assert counts.var() / counts.mean() == pytest.approx(1.0, abs=0.05)


def test_duration_mode_keeps_arrivals_inside_the_window():
    req = requests(3.0, duration_s=100.0, seed=4)
    assert req.arrival_s.max() < 100.0
    assert np.all(np.diff(req.arrival_s) >= 0)
    assert 200 < req.n < 400  # Poisson(300): 6 standard deviations either side


def test_same_seed_same_requests_other_seed_differs():
    a = requests(
        4.0, n=1000, arrival="gamma", cv=2.0, input_tokens=load_catalog().workload("chat").input_tokens, seed=9
    )
    b = requests(
        4.0, n=1000, arrival="gamma", cv=2.0, input_tokens=load_catalog().workload("chat").input_tokens, seed=9
    )
    c = requests(
        4.0, n=1000, arrival="gamma", cv=2.0, input_tokens=load_catalog().workload("chat").input_tokens, seed=10
    )
    assert np.array_equal(a.arrival_s, b.arrival_s) and np.array_equal(a.input_tokens, b.input_tokens)
    assert not np.array_equal(a.arrival_s, c.arrival_s)


def test_lognormal_mean_cv_and_clip():
    dist = LengthDistribution(family="lognormal", mean=1000, cv=1.0, min=1, max=10_000_000)
    x = sample_lengths(dist, N, np.random.default_rng(2))
    # median of a lognormal with mean m and cv c is m / sqrt(1 + c^2) = 1000 / sqrt(2) = 707.1
    assert np.median(x) == pytest.approx(707.1, rel=0.02)
    assert x.mean() == pytest.approx(1000, rel=0.02)
    assert x.std() / x.mean() == pytest.approx(1.0, rel=0.08)  # heavy tail: looser tolerance
    clipped = sample_lengths(dist.model_copy(update={"min": 100, "max": 2000}), N, np.random.default_rng(2))
    assert clipped.min() == 100 and clipped.max() == 2000


@pytest.mark.parametrize(
    ("family", "cv"),
    [("gamma", 0.5), ("exponential", 1.0), ("uniform", 0.3)],
)
def test_other_length_families_match_mean_and_cv(family, cv):
    dist = LengthDistribution(family=family, mean=500, cv=cv, min=1, max=1_000_000)
    x = sample_lengths(dist, N, np.random.default_rng(5))
    assert x.mean() == pytest.approx(500, rel=0.01)
    assert x.std() / x.mean() == pytest.approx(cv, rel=0.03)


def test_fixed_lengths():
    assert sample_lengths(LengthDistribution(family="fixed", mean=300), 4).tolist() == [300] * 4
    assert sample_lengths(128, 3).tolist() == [128] * 3
    for bad in (0, -5, 2.5, float("nan"), True, "10"):
        with pytest.raises(TrafficError, match="fixed token length"):
            sample_lengths(bad, 3)


def test_every_workload_preset_draws_within_its_clip_range():
    for wl in load_catalog().workloads.values():
        req = workload_requests(wl, 1.0, n=5000, seed=0)
        assert req.input_tokens.min() >= wl.input_tokens.min and req.input_tokens.max() <= wl.input_tokens.max
        assert req.output_tokens.min() >= wl.output_tokens.min and req.output_tokens.max() <= wl.output_tokens.max
        assert req.prefix_cache_hit == wl.prefix_cache_hit
        assert wl.id in req.source


def test_workload_arrival_override():
    chat = load_catalog().workload("chat")  # gamma cv 1.41 in the catalog
    bursty = workload_requests(chat, 2.0, n=N, seed=1)
    assert summarize(bursty).interarrival_cv == pytest.approx(1.41, rel=0.05)
    calm = workload_requests(chat, 2.0, n=N, arrival="poisson", seed=1)
    assert summarize(calm).interarrival_cv == pytest.approx(1.0, rel=0.03)


def test_lengths_drawn_from_a_trace_keep_pairs():
    trace = parse_trace(TRACES / "good_llmcap.csv")
    req = requests(1.0, n=2000, trace=trace, seed=0)
    pairs = set(zip(trace.input_tokens.tolist(), trace.output_tokens.tolist(), strict=True))
    assert set(zip(req.input_tokens.tolist(), req.output_tokens.tolist(), strict=True)) == pairs


def test_replay_trace_and_rate_scaling():
    trace = parse_trace(TRACES / "good_llmcap.csv")  # 4 requests over 2 s
    same = replay_trace(trace)
    assert same.arrival_s.tolist() == [0.0, 0.5, 0.75, 2.0]
    scaled = replay_trace(trace, rate_rps=4.0)  # realized rate 2 req/s -> times halved
    assert scaled.arrival_s.tolist() == [0.0, 0.25, 0.375, 1.0]
    assert replay_trace(trace, n=2).input_tokens.tolist() == [512, 1024]
    with pytest.raises(TrafficError, match=r"\[1, 4\]"):
        replay_trace(trace, n=5)


def test_requests_are_frozen():
    req = requests(1.0, n=10)
    with pytest.raises(ValueError):
        req.arrival_s[0] = 5.0
    with pytest.raises(AttributeError):
        req.prefix_cache_hit = 0.5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate_rps": 0, "n": 10}, "positive number of requests per second"),
        ({"rate_rps": float("inf"), "n": 10}, "positive number of requests per second"),
        ({"rate_rps": 1.0}, "either a number of requests or a duration"),
        ({"rate_rps": 1.0, "n": 10, "duration_s": 5.0}, "either a number of requests or a duration"),
        ({"rate_rps": 1.0, "n": 0}, "whole number in"),
        ({"rate_rps": 1.0, "duration_s": -1.0}, "positive number of seconds"),
        ({"rate_rps": 1e9, "duration_s": 1e9}, "exceed the limit"),
        ({"rate_rps": 1.0, "n": 5, "arrival": "gamma", "cv": 0.0}, "coefficient of variation > 0"),
        ({"rate_rps": 1.0, "n": 5, "arrival": "weibull"}, "unknown arrival process"),
        ({"rate_rps": 1.0, "n": 5, "prefix_cache_hit": 1.5}, "within \\[0, 1\\]"),
    ],
)
def test_bad_parameters_get_clear_messages(kwargs, message):
    rate = kwargs.pop("rate_rps")
    with pytest.raises(TrafficError, match=message):
        requests(rate, **kwargs)


def test_spread_by_hand():
    s = spread(np.array([1.0, 2.0, 3.0, 4.0]))
    # mean 2.5; population std sqrt(1.25) = 1.1180; cv 0.4472; median 2.5
    assert (s.mean, s.p50, s.min, s.max) == (2.5, 2.5, 1.0, 4.0)
    assert s.cv == pytest.approx(0.44721, rel=1e-4)
