"""Paired-difference intervals: the t quantile against printed tables, the t interval against a hand
computation, the undefined case, and the bootstrap's behaviour."""

from __future__ import annotations

import math

import pytest

from ablations.stats import bootstrap_interval, interval, t_cdf, t_interval, t_quantile

# Student's t quantiles as printed in any statistics table (e.g. NIST/SEMATECH e-Handbook, Table 1.3.6.7.2).
TABLE = [(0.975, 1, 12.706), (0.975, 2, 4.303), (0.975, 3, 3.182), (0.975, 4, 2.776), (0.975, 9, 2.262),
         (0.975, 30, 2.042), (0.95, 10, 1.812), (0.995, 5, 4.032), (0.975, 100, 1.984)]


@pytest.mark.parametrize("p, df, expected", TABLE)
def test_t_quantile_matches_the_printed_table(p, df, expected):
    assert t_quantile(p, df) == pytest.approx(expected, abs=6e-4)
    assert t_quantile(1 - p, df) == pytest.approx(-expected, abs=6e-4)
    assert t_cdf(t_quantile(p, df), df) == pytest.approx(p, abs=1e-9)


def test_t_cdf_of_one_degree_of_freedom_is_the_cauchy_cdf():
    for t in (-3.0, -0.5, 0.0, 0.7, 10.0):
        assert t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-12)


def test_t_interval_against_a_hand_computation():
    # differences 0.1, 0.3, 0.2: mean 0.2, sd 0.1 (n - 1), se 0.1 / sqrt(3) = 0.0577350,
    # t_{0.975, 2} = 4.302653, half width 0.2484138
    iv = t_interval([0.1, 0.3, 0.2])
    assert iv.n == 3 and iv.mean == pytest.approx(0.2)
    assert iv.lo == pytest.approx(0.2 - 0.2484138, abs=1e-6) and iv.hi == pytest.approx(0.2 + 0.2484138, abs=1e-6)
    assert iv.defined and not iv.excludes_zero and iv.side == 0
    shifted = t_interval([0.4, 0.6, 0.5])  # same spread, mean 0.5: the interval lies above 0
    assert shifted.lo == pytest.approx(0.5 - 0.2484138, abs=1e-6) and shifted.side == 1
    assert t_interval([-0.4, -0.6, -0.5]).side == -1


def test_fewer_than_two_pairs_have_no_interval():
    one = t_interval([0.7])
    assert one.n == 1 and one.mean == pytest.approx(0.7) and not one.defined and one.side == 0
    assert "1 seed pair" in one.why
    none = t_interval([float("nan")])  # a missing value is no pair
    assert none.n == 0 and math.isnan(none.mean) and "no seed" in none.why


def test_bootstrap_stays_inside_the_data_and_is_reproducible():
    diffs = [0.1, 0.3, 0.2, 0.25, 0.15]
    a, b = bootstrap_interval(diffs, seed=1), bootstrap_interval(diffs, seed=1)
    assert a == b and a.method == "bootstrap"
    assert min(diffs) <= a.lo < a.mean < a.hi <= max(diffs)
    t = t_interval(diffs)
    assert t.lo < a.lo and a.hi < t.hi  # with 5 pairs the percentile bootstrap is the narrower one
    assert not bootstrap_interval([0.2]).defined


def test_unknown_method_and_confidence_are_refused():
    with pytest.raises(ValueError, match="unknown interval method 'z'; accepted: t, bootstrap"):
        interval([1.0, 2.0], method="z")
    with pytest.raises(ValueError, match="confidence=1.5"):
        t_interval([1.0, 2.0], confidence=1.5)
