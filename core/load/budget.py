"""A token budget per answer: the engine stops a sample after `cap` output tokens (vLLM/SGLang `max_tokens`, a
reasoning model's thinking budget), so an output length X becomes min(X, cap), a distribution censored at cap
(the mass above it piles up at cap; it is not renormalized as a truncated distribution would be).

Drawn requests (estimate --rate) are clipped one by one (`cap_lengths`) and their mean and cv follow from the draw.
The planner, which knows only a mean and a cv, takes the length as lognormal (as llmcap.plan.sessions draws it)
and uses the closed-form partial moments of the lognormal (Johnson, Kotz and Balakrishnan, Continuous Univariate
Distributions vol. 1, 2nd ed. 1994, ch. 14; e.g. E[X^k; X < c] = exp(k mu + k^2 s^2 / 2) Phi((ln c - mu - k s^2) / s)):

    s^2 = ln(1 + cv^2), mu = ln(mean) - s^2 / 2, z = (ln cap - mu) / s
    E[min(X, c)^k] = exp(k mu + k^2 s^2 / 2) Phi(z - k s) + c^k (1 - Phi(z)),  k = 1, 2
    mean' = E[min(X, c)],  cv' = sqrt(E[min(X, c)^2] - mean'^2) / mean',  share cut = 1 - Phi(z)

A fixed length (cv 0) is min(mean, cap).
"""

from __future__ import annotations

import math

import numpy as np

MAX_BUDGET_TOKENS = 10_000_000


def _phi(x: float) -> float:
    """Standard normal CDF."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def capped_moments(mean: float, cv: float, cap: float | None) -> tuple[float, float, float]:
    """(mean, cv, share of answers cut) of min(X, cap) for X lognormal with `mean` and `cv` (module docstring);
    cap None: X unchanged."""
    if cap is None:
        return float(mean), float(cv), 0.0
    if not (math.isfinite(mean) and mean > 0 and math.isfinite(cv) and cv >= 0 and math.isfinite(cap) and cap >= 1):
        raise ValueError(f"capped_moments: need mean > 0, cv >= 0, cap >= 1 (got {mean}, {cv}, {cap})")
    if cv == 0:
        return min(float(mean), float(cap)), 0.0, 1.0 if mean > cap else 0.0
    s2 = math.log1p(cv * cv)
    s = math.sqrt(s2)
    mu = math.log(mean) - s2 / 2
    z = (math.log(cap) - mu) / s
    above = 1.0 - _phi(z)
    m1 = math.exp(mu + s2 / 2) * _phi(z - s) + cap * above
    m2 = math.exp(2 * mu + 2 * s2) * _phi(z - 2 * s) + cap * cap * above
    var = max(m2 - m1 * m1, 0.0)
    return m1, math.sqrt(var) / m1, above


def cap_lengths(tokens: np.ndarray, cap: int | None) -> np.ndarray:
    """Drawn output lengths with the budget applied (each at most `cap`)."""
    if cap is None:
        return tokens
    return np.minimum(tokens, int(cap))


def budget_note(before: np.ndarray, after: np.ndarray, cap: int) -> str:
    """One line on what the budget did to drawn lengths."""
    b, a = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    cut = float(np.mean(b > cap)) if b.size else 0.0
    return (
        f"token budget {cap:,} output tokens per sample: {cut:.1%} of samples cut at the budget; mean output "
        f"{b.mean() if b.size else 0:,.0f} -> {a.mean() if a.size else 0:,.0f} tokens (a cut answer may be wrong or "
        "unfinished: the budget trades quality for cost, which this model does not measure)"
    )
