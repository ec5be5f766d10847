"""mmseg_marginal.experiments.stats: Welch's t interval and p, the one-sample t interval.

Reference values are computed by hand from the closed forms of Student's t CDF for 2 and 4
degrees of freedom: with ``x = t / sqrt(nu + t^2)``, ``F_2(t) = 1/2 + x/2`` and
``F_4(t) = 1/2 + (3/4) x (1 - x^2/3)``; so ``t_{2, 0.975} = sqrt(2 a^2 / (1 - a^2))`` with
``a = 0.95``.
"""

import math

import pytest

from mmseg_marginal.experiments import Difference, t_interval, welch_difference
from mmseg_marginal.experiments.stats import format_difference, format_p

T2_975 = math.sqrt(2 * 0.95**2 / (1 - 0.95**2))  # 4.3026...


def _p2(t):
    """Two-sided p of Student's t with 2 degrees of freedom."""
    return 1 - abs(t) / math.sqrt(2 + t * t)


def _cdf4(t):
    x = t / math.sqrt(4 + t * t)
    return 0.5 + 0.75 * x * (1 - x * x / 3)


def test_the_t_quantile_of_2_degrees_of_freedom_by_hand():
    assert T2_975 == pytest.approx(4.302653, abs=1e-6)


def test_welch_with_two_seeds_each_and_equal_spread_has_2_degrees_of_freedom():
    # means 1 and 4, sample variances 2 and 2: se = sqrt(2/2 + 2/2) = sqrt(2), df = 2
    d = welch_difference([0.0, 2.0], [3.0, 5.0])
    assert d.diff == -3.0
    assert d.df == pytest.approx(2.0)
    assert d.low == pytest.approx(-3 - T2_975 * math.sqrt(2))
    assert d.high == pytest.approx(-3 + T2_975 * math.sqrt(2))
    assert d.p == pytest.approx(_p2(3 / math.sqrt(2)))  # 0.16795
    assert d.p == pytest.approx(0.167950, abs=1e-6)
    assert d.confidence == 0.95


def test_welch_with_three_seeds_each_and_4_degrees_of_freedom():
    # [1, 2, 3] vs [3, 4, 5]: variances 1 and 1, se^2 = 2/3, df = (4/9) / (1/18 + 1/18) = 4
    d = welch_difference([1.0, 2.0, 3.0], [3.0, 4.0, 5.0])
    se = math.sqrt(2 / 3)
    assert d.diff == pytest.approx(-2.0) and d.df == pytest.approx(4.0)
    assert d.p == pytest.approx(2 * (1 - _cdf4(2 / se)))  # t = sqrt(6): p = 0.070484
    assert d.p == pytest.approx(0.070484, abs=1e-6)
    # the interval's ends are the 2.5 % and 97.5 % points: F_4((high - diff) / se) = 0.975
    assert _cdf4((d.high - d.diff) / se) == pytest.approx(0.975)
    assert d.diff - d.low == pytest.approx(d.high - d.diff)


def test_welch_satterthwaite_degrees_of_freedom_with_unequal_spread():
    # [1, 2, 3] (variance 1) vs [4, 6, 8] (variance 4): se^2 = 1/3 + 4/3,
    # df = (5/3)^2 / ((1/3)^2 / 2 + (4/3)^2 / 2) = 50/17
    d = welch_difference([1.0, 2.0, 3.0], [4.0, 6.0, 8.0])
    assert d.df == pytest.approx(50 / 17)
    assert d.diff == pytest.approx(-4.0)
    scipy_stats = pytest.importorskip("scipy.stats")
    ref = scipy_stats.ttest_ind([1.0, 2.0, 3.0], [4.0, 6.0, 8.0], equal_var=False)
    assert d.p == pytest.approx(ref.pvalue)
    # the difference is antisymmetric, p symmetric
    e = welch_difference([4.0, 6.0, 8.0], [1.0, 2.0, 3.0])
    assert (e.diff, e.low, e.high) == pytest.approx((4.0, -d.high, -d.low))
    assert e.p == pytest.approx(d.p)


def test_one_sample_interval_against_a_fixed_value():
    # [1, 2, 3] vs 0: mean 2, s = 1, se = 1/sqrt(3), df = 2, t = 2 sqrt(3)
    d = t_interval([1.0, 2.0, 3.0])
    assert d.df == 2 and d.diff == pytest.approx(2.0)
    assert (d.low, d.high) == pytest.approx((2 - T2_975 / math.sqrt(3), 2 + T2_975 / math.sqrt(3)))
    assert d.p == pytest.approx(_p2(2 * math.sqrt(3)))  # 0.074180
    assert t_interval([1.0, 2.0, 3.0], 2.0).p == pytest.approx(1.0)  # mean equals the value


def test_undefined_cases_give_none_and_bad_values_one_error():
    assert welch_difference([1.0], [1.0, 2.0]) is None  # one seed: no spread to estimate
    assert welch_difference([1.0, 2.0], [3.0]) is None
    assert welch_difference([1.0, 1.0], [2.0, 2.0]) is None  # neither side varies
    assert welch_difference([1.0, 1.0], [2.0, 3.0]) is not None  # one side varies: defined
    assert t_interval([5.0]) is None and t_interval([5.0, 5.0]) is None
    with pytest.raises(ValueError, match=r"values must be finite numbers, got \[nan\]"):
        welch_difference([1.0, float("nan")], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"reference values must be finite.*inf"):
        welch_difference([1.0, 2.0], [1.0, float("inf")])
    with pytest.raises(ValueError, match=r"confidence must lie in \(0, 1\), got 95"):
        t_interval([1.0, 2.0], confidence=95)


def test_a_wider_confidence_gives_a_wider_interval():
    narrow = welch_difference([1.0, 2.0, 3.0], [3.0, 4.0, 5.0], confidence=0.9)
    wide = welch_difference([1.0, 2.0, 3.0], [3.0, 4.0, 5.0], confidence=0.99)
    assert wide.low < narrow.low < narrow.high < wide.high
    assert narrow.p == wide.p


def test_formatting_of_a_difference():
    d = Difference(diff=-2.56, low=-6.64, high=1.62, p=0.1202, df=2.4)
    assert format_difference(d) == "-2.6 [-6.6, +1.6], p = 0.12"
    assert format_difference(d, 2) == "-2.56 [-6.64, +1.62], p = 0.12"
    assert format_difference(Difference(-0.02, -0.5, 0.04, 0.9, 2)) == "0.0 [-0.5, 0.0], p = 0.90"
    assert format_difference(None) == "–"
    assert [format_p(p) for p in (1.0, 0.24, 0.034, 0.0059, 0.0004)] == [
        "p = 1.00",
        "p = 0.24",
        "p = 0.034",
        "p = 0.0059",
        "p < 0.001",
    ]
