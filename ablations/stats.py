"""Confidence intervals for paired differences over seeds: Student's t (default) and a percentile bootstrap.

An ablation compares a variant with the grid's baseline seed by seed (seed k of both share data order,
evaluation captions and noise), so the unit of evidence is the difference d_k = variant_k - baseline_k.
Over n pairs the t interval is mean(d) +- t_{1-a/2, n-1} * sd(d) / sqrt(n) (sd with n - 1). With fewer than
2 pairs there is no spread to estimate and no interval: `Interval.defined` is False and `why` says so.

No scipy: the t quantile is computed here from the regularised incomplete beta function (Numerical Recipes'
continued fraction, Lentz's method) and bisection; it matches the printed tables to 4 decimals
(t_{0.975, 2} = 4.3027, t_{0.975, 9} = 2.2622).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Sequence

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """Mean of the paired differences and its confidence interval.

    n:       number of seed pairs.
    mean:    mean difference (variant - baseline); nan when n == 0.
    lo, hi:  the interval's ends; nan when undefined (n < 2).
    method:  "t" or "bootstrap".
    why:     why the interval is undefined ("" when defined).
    """

    n: int
    mean: float
    lo: float
    hi: float
    confidence: float = CONFIDENCE
    method: str = "t"
    why: str = ""

    @property
    def defined(self) -> bool:
        return math.isfinite(self.lo) and math.isfinite(self.hi)

    @property
    def side(self) -> int:
        """+1 when the interval lies above 0, -1 when below 0, 0 when it contains 0 or is undefined."""
        if not self.defined:
            return 0
        return 1 if self.lo > 0 else -1 if self.hi < 0 else 0

    @property
    def excludes_zero(self) -> bool:
        return self.side != 0


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"betainc: x={x} must be in [0, 1]")
    if x in (0.0, 1.0):
        return x
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with `df` > 0 degrees of freedom."""
    if df <= 0:
        raise ValueError(f"t_cdf: df={df} must be > 0")
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t with `df` degrees of freedom (e.g. t_quantile(0.975, 2) = 4.3027)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"t_quantile: p={p} must be in (0, 1)")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def _clean(diffs: Sequence[float]) -> list[float]:
    return [float(d) for d in diffs if d is not None and math.isfinite(float(d))]


def _undefined(values: list[float], confidence: float, method: str) -> Interval:
    n = len(values)
    mean = sum(values) / n if n else math.nan
    why = "no seed run with both" if n == 0 else "1 seed pair: no spread, no interval; needs 2+ seeds"
    return Interval(n, mean, math.nan, math.nan, confidence, method, why)


def t_interval(diffs: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """Student's t interval of the mean of paired differences (non-finite entries dropped).

    Raises:
        ValueError: confidence outside (0, 1).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence} must be in (0, 1)")
    values = _clean(diffs)
    n = len(values)
    if n < 2:
        return _undefined(values, confidence, "t")
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile(0.5 + confidence / 2.0, n - 1) * sd / math.sqrt(n)
    return Interval(n, mean, mean - half, mean + half, confidence, "t")


def bootstrap_interval(diffs: Sequence[float], confidence: float = CONFIDENCE, resamples: int = 10_000,
                       seed: int = 0) -> Interval:
    """Percentile bootstrap interval of the mean of paired differences (resampling seed pairs).

    With few pairs it is narrower than the t interval (it cannot see beyond the observed values); prefer t
    below ~10 seeds.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence} must be in (0, 1)")
    values = _clean(diffs)
    n = len(values)
    if n < 2:
        return _undefined(values, confidence, "bootstrap")
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(resamples))
    alpha = (1.0 - confidence) / 2.0
    lo = means[int(math.floor(alpha * (resamples - 1)))]
    hi = means[int(math.ceil((1.0 - alpha) * (resamples - 1)))]
    return Interval(n, sum(values) / n, lo, hi, confidence, "bootstrap")


METHODS = {"t": t_interval, "bootstrap": bootstrap_interval}


def interval(diffs: Sequence[float], method: str = "t", confidence: float = CONFIDENCE) -> Interval:
    """The paired-difference interval by `method` ("t" or "bootstrap").

    Raises:
        ValueError: unknown method (lists the accepted ones).
    """
    if method not in METHODS:
        raise ValueError(f"unknown interval method {method!r}; accepted: {', '.join(METHODS)}")
    return METHODS[method](diffs, confidence)
