"""Pareto fronts checked against fronts read off by hand."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from llmcap.plan.pareto import pareto_front


def test_hand_example_maximize_both():
    # points: A(1,5) B(2,4) C(2,2) D(3,1) E(0.5,5) F(3,1)
    x = [1, 2, 2, 3, 0.5, 3]
    y = [5, 4, 2, 1, 5, 1]
    # C is dominated by B; E by A; D and F tie: the first of equal points stays
    assert pareto_front(x, y).tolist() == [0, 1, 3]


def test_minimize_cost_minimize_latency():
    cost = [10, 5, 7, 20]
    latency = [1.0, 3.0, 2.0, 0.5]
    # each point trades cost for latency against the others: all four are on the front
    assert pareto_front(cost, latency, maximize_x=False, maximize_y=False).tolist() == [1, 2, 0, 3]
    cost2 = [10, 5, 7, 20, 8]
    latency2 = [1.0, 3.0, 2.0, 0.5, 2.5]  # (8, 2.5) is dominated by (7, 2)
    assert 4 not in pareto_front(cost2, latency2, maximize_x=False, maximize_y=False).tolist()


def test_non_finite_points_are_skipped():
    assert pareto_front([np.nan, 1, np.inf], [1, 1, 9]).tolist() == [1]


@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), min_size=1, max_size=40))
def test_front_matches_brute_force(points):
    x = np.array([p[0] for p in points], dtype=float)
    y = np.array([p[1] for p in points], dtype=float)
    front = set(pareto_front(x, y).tolist())
    for i in range(len(x)):
        dominated = np.any((x >= x[i]) & (y >= y[i]) & ((x > x[i]) | (y > y[i])))
        if dominated:
            assert i not in front
        else:  # not dominated: it or an identical earlier point is on the front
            same = np.flatnonzero((x == x[i]) & (y == y[i]))
            assert any(j in front for j in same)
