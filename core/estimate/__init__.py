"""Estimation: resolve ids, the vectorized evaluation, closed-loop serving, one scenario, compare."""
