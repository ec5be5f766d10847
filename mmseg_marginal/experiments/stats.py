r"""Differences between losses over seeds: Welch's t interval and test, one-sample t interval.

For per-seed values :math:`a_1..a_n` of a loss and :math:`b_1..b_m` of the reference loss, with
means :math:`\bar a, \bar b` and sample variances :math:`s_a^2, s_b^2` (divisor ``n - 1``):

.. math::

    d = \bar a - \bar b, \qquad
    \mathrm{se} = \sqrt{s_a^2 / n + s_b^2 / m}, \qquad
    \nu = \frac{\mathrm{se}^4}{\frac{(s_a^2/n)^2}{n-1} + \frac{(s_b^2/m)^2}{m-1}}
    \quad\text{(Welch-Satterthwaite)},

the interval is :math:`d \pm t_{\nu, (1+c)/2}\,\mathrm{se}` (``c`` the confidence, 0.95) and
the two-sided p-value is :math:`2\,(1 - F_\nu(|d| / \mathrm{se}))` with :math:`F_\nu` the CDF
of Student's t with :math:`\nu` degrees of freedom (fractional :math:`\nu` allowed), as in
``scipy.stats.ttest_ind(a, b, equal_var=False)``. The one-sample form (:func:`t_interval`)
compares the mean of one loss with a fixed value (e.g. the ground-truth share): ``se = s / √n``,
:math:`\nu = n - 1`.

The interval is over seeds: it says how far the mean difference could move with other seeds
of the same protocol, not how the losses compare on other data or models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence


@dataclass(frozen=True)
class Difference:
    """A mean difference with its confidence interval and two-sided p-value.

    Attributes:
        diff (float): mean of the values minus the reference (mean or fixed value).
        low (float): lower end of the interval.
        high (float): upper end of the interval.
        p (float): two-sided p-value of "no difference".
        df (float): degrees of freedom of the t distribution used.
        confidence (float): confidence of the interval, e.g. 0.95.
    """

    diff: float
    low: float
    high: float
    p: float
    df: float
    confidence: float = 0.95


def _mean_var(values: Sequence[float]) -> tuple:
    n = len(values)
    mean = sum(values) / n
    return mean, sum((v - mean) ** 2 for v in values) / (n - 1), n


def _check(values: Sequence[float], what: str) -> list:
    vals = [float(v) for v in values]
    bad = [v for v in vals if not math.isfinite(v)]
    if bad:
        raise ValueError(f"{what} must be finite numbers, got {bad}")
    return vals


def _from_t(diff: float, se: float, df: float, confidence: float) -> Difference:
    from scipy import stats

    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
    p = float(2 * stats.t.sf(abs(diff) / se, df))
    return Difference(diff, diff - half, diff + half, min(p, 1.0), df, confidence)


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")


def welch_difference(
    values: Sequence[float], reference: Sequence[float], confidence: float = 0.95
) -> Optional[Difference]:
    """Welch's t interval and test of ``mean(values) - mean(reference)`` (module docstring).

    Returns:
        Difference | None: None when either side has fewer than 2 values, or when both have
        no spread (zero sample variance), where the t statistic is undefined.

    Raises:
        ValueError: a value is not finite, or ``confidence`` is not in (0, 1).
    """
    _check_confidence(confidence)
    a = _check(values, "values")
    b = _check(reference, "reference values")
    if len(a) < 2 or len(b) < 2:
        return None
    mean_a, var_a, n = _mean_var(a)
    mean_b, var_b, m = _mean_var(b)
    ua, ub = var_a / n, var_b / m
    se2 = ua + ub
    if se2 == 0:
        return None
    df = se2**2 / (ua**2 / (n - 1) + ub**2 / (m - 1))
    return _from_t(mean_a - mean_b, math.sqrt(se2), df, confidence)


def t_interval(
    values: Sequence[float], value: float = 0.0, confidence: float = 0.95
) -> Optional[Difference]:
    """One-sample t interval and test of ``mean(values) - value``.

    Returns:
        Difference | None: None with fewer than 2 values or zero sample variance.

    Raises:
        ValueError: a value is not finite, or ``confidence`` is not in (0, 1).
    """
    _check_confidence(confidence)
    a = _check(values, "values")
    _check([value], "the compared value")
    if len(a) < 2:
        return None
    mean, var, n = _mean_var(a)
    if var == 0:
        return None
    return _from_t(mean - value, math.sqrt(var / n), n - 1, confidence)


def _signed(x: float, digits: int) -> str:
    text = f"{x:+.{digits}f}"
    return text[1:] if float(text) == 0 else text  # no sign on a value that rounds to 0


def format_p(p: float) -> str:
    """``p = 0.24`` (two decimals from 0.1), ``p = 0.034`` (two significant digits below),
    ``p < 0.001``."""
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.2f}" if p >= 0.1 else f"p = {p:.2g}"


def format_difference(d: Optional[Difference], digits: int = 1) -> str:
    """``+d [low, high], p = P`` with signed ``digits`` decimals (:func:`format_p`); ``–`` for
    None."""
    if d is None:
        return "–"
    ends = f"[{_signed(d.low, digits)}, {_signed(d.high, digits)}]"
    return f"{_signed(d.diff, digits)} {ends}, {format_p(d.p)}"
