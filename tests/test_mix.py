"""The Mélange integer program on mixes small enough to solve by hand."""

import pytest

from llmcap.plan.mix_ip import solve_mix


def test_single_type_rounds_up_to_whole_units():
    # 10 req/s, one type with 4 req/s per unit at $3/h: ceil(10/4) = 3 units, $9/h
    mix = solve_mix([10.0], [[4.0]], [3.0])
    assert mix.feasible
    assert mix.units == [3]
    assert mix.usd_per_hour == pytest.approx(9.0)


def test_two_buckets_each_to_its_cheaper_type():
    # bucket 0 (short requests): A does 10/s per $1/h unit, B does 12/s per $4/h -> A
    # bucket 1 (long requests): A does 1/s, B does 8/s -> for 8 req/s: 8 A units ($8) vs 1 B unit ($4) -> B
    # bucket 0 carries 20 req/s -> 2 A units. Total $2 + $4 = $6/h.
    mix = solve_mix([20.0, 8.0], [[10.0, 12.0], [1.0, 8.0]], [1.0, 4.0])
    assert mix.feasible
    assert mix.units == [2, 1]
    assert mix.usd_per_hour == pytest.approx(6.0)
    assert mix.share[0][0] == pytest.approx(1.0)
    assert mix.share[1][1] == pytest.approx(1.0)


def test_leftover_capacity_is_shared_across_buckets():
    # A: 10 short/s or 1 long/s per $1.5/h unit; B: 12 short/s or 8 long/s per $4/h unit. Load 10 short + 4 long.
    # A only: 1 + 4 = 5 units = $7.5. B only: 10/12 + 4/8 = 1.33 -> 2 units = $8.
    # 1 B + 1 A: B takes the 4 long (half a unit) and 6 short (the other half), A the other 4 short: $5.5.
    # 1 B alone (1.33 units of load) is infeasible, so $5.5 is the optimum.
    mix = solve_mix([10.0, 4.0], [[10.0, 12.0], [1.0, 8.0]], [1.5, 4.0])
    assert mix.feasible
    assert mix.usd_per_hour == pytest.approx(5.5)
    assert mix.units == [1, 1]


def test_bucket_no_type_can_serve_is_infeasible():
    mix = solve_mix([1.0, 1.0], [[5.0, 0.0], [0.0, 0.0]], [1.0, 2.0])
    assert not mix.feasible
    assert "bucket 1" in mix.message


def test_unit_limit_forces_the_dearer_type():
    # A is cheaper per request but at most 1 unit may be bought
    mix = solve_mix([15.0], [[10.0, 10.0]], [1.0, 2.0], max_units=[1, 10])
    assert mix.units == [1, 1]
    assert mix.usd_per_hour == pytest.approx(3.0)
