"""Small statistics for comparisons, in pure Python (no numpy, scipy or torch).

The Student t distribution (:func:`t_cdf`, :func:`t_ppf`, :func:`t_two_sided_p`), by the
regularized incomplete beta function (:func:`betainc`, a continued fraction), and the paired
t-test that :mod:`zoo.comparison.compare` runs across seeds: :func:`paired_differences` compares
every
activation with the best one, seed by seed. Seed ``k`` gives every activation the same initial
weights (where the shapes match) and the same data order, so two activations' runs with the same
seed are a pair, and the test is on the per-seed differences.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

#: The significance level of the tests (and 1 - the confidence of the intervals).
ALPHA = 0.05

_EPSILON = 1e-15
_TINY = 1e-300
_MAX_ITERATIONS = 10_000


# -- the t distribution ----------------------------------------------------------------------


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), for ``a, b > 0`` and ``0 <= x <= 1``
    (by its continued fraction, evaluated with the modified Lentz method)."""
    if a <= 0 or b <= 0:
        raise ValueError(f"betainc needs a > 0 and b > 0, got a={a}, b={b}")
    if math.isnan(x) or not 0.0 <= x <= 1.0:
        raise ValueError(f"betainc needs 0 <= x <= 1, got x={x}")
    if x == 0.0 or x == 1.0:
        return x
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    # The continued fraction converges fast for x < (a + 1) / (a + b + 2); use the symmetry
    # I_x(a, b) = 1 - I_{1-x}(b, a) on the other side.
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (Numerical Recipes' ``betacf``)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, _MAX_ITERATIONS + 1):
        m2 = 2 * m
        for numerator in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            step = d * c
            h *= step
        if abs(step - 1.0) < _EPSILON:
            return h
    raise ArithmeticError(f"the incomplete beta fraction did not converge (a={a}, b={b}, x={x})")


def _check_df(df: float) -> None:
    if not df > 0 or math.isinf(df):
        raise ValueError(f"the degrees of freedom must be a positive number, got {df}")


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for T Student-t distributed with ``df`` degrees of freedom."""
    _check_df(df)
    if math.isnan(t):
        raise ValueError("t is nan")
    if math.isinf(t):
        return 0.0
    return betainc(df / 2.0, 0.5, df / (df + t * t))


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for T Student-t distributed with ``df`` degrees of freedom."""
    tail = t_two_sided_p(t, df) / 2.0
    return 1.0 - tail if t > 0 else tail


def t_ppf(p: float, df: float) -> float:
    """The quantile function (inverse CDF) of the Student t distribution: the ``t`` with
    ``P(T <= t) = p``, e.g. ``t_ppf(0.975, 2) = 4.3027``. ``p`` 0 and 1 give -inf and inf."""
    _check_df(df)
    if math.isnan(p) or not 0.0 <= p <= 1.0:
        raise ValueError(f"a probability must be in [0, 1], got {p}")
    if p in (0.0, 1.0):
        return math.inf if p == 1.0 else -math.inf
    if p == 0.5:
        return 0.0
    tail = min(p, 1.0 - p)  # the one-sided tail beyond |t|, compared as a tail: no 1 - p loss
    low, high = 0.0, 1.0
    while t_two_sided_p(high, df) / 2.0 > tail:
        low, high = high, 2.0 * high
        if math.isinf(high):
            return math.copysign(math.inf, p - 0.5)
    for _ in range(200):  # bisection, to the resolution of a float
        middle = (low + high) / 2.0
        if middle in (low, high):
            break
        if t_two_sided_p(middle, df) / 2.0 > tail:
            low = middle
        else:
            high = middle
    t = (low + high) / 2.0
    return t if p > 0.5 else -t


# -- the paired t-test -----------------------------------------------------------------------


class TTest(NamedTuple):
    """A one-sample t-test of differences: their ``mean``, its confidence interval ``ci``
    (None with fewer than two differences), the two-sided ``p_value`` of the hypothesis that the
    true mean is 0 (None with fewer than two) and the number of differences ``n``."""

    mean: float | None
    ci: tuple[float, float] | None
    p_value: float | None
    n: int


def t_test_differences(differences: Sequence[float], *, alpha: float = ALPHA) -> TTest:
    """Test whether the mean of paired ``differences`` is 0, with a ``1 - alpha`` confidence
    interval for it. Differences without spread (all equal, up to rounding) give the point as
    the interval and p 0, or p 1 if they are all 0."""
    values = [float(d) for d in differences]
    n = len(values)
    if n == 0:
        return TTest(None, None, None, 0)
    mean = statistics.fmean(values)
    if n < 2:
        return TTest(mean, None, None, n)
    spread = statistics.stdev(values)
    if spread <= 1e-12 * max(abs(d) for d in values):
        p_value = 1.0 if mean == 0.0 else 0.0
        return TTest(mean, (mean, mean), p_value, n)
    error = spread / math.sqrt(n)
    half_width = t_ppf(1.0 - alpha / 2.0, n - 1) * error
    p_value = t_two_sided_p(mean / error, n - 1)
    return TTest(mean, (mean - half_width, mean + half_width), p_value, n)


@dataclass(frozen=True)
class PairedResult:
    """One activation against the best one (the highest mean) over the seeds they share.

    ``diff``: the mean of (this one's - the best's) per-seed values (0 for the best itself, None
    with no seed in common); ``ci95``: its confidence interval; ``p_value``: the paired t-test's
    two-sided p-value (both None for the best, and with fewer than two paired seeds); ``n``: the
    paired seeds; ``verdict``: the outcome in words."""

    activation: str
    best: str
    diff: float | None
    ci95: tuple[float, float] | None
    p_value: float | None
    n: int
    verdict: str
    alpha: float = ALPHA

    @property
    def is_best(self) -> bool:
        return self.activation == self.best

    @property
    def tied_with_best(self) -> bool:
        """The best itself, or tested and not significantly worse than the best."""
        return self.is_best or not_worse(self.diff, self.p_value, self.alpha)

    def to_dict(self) -> dict[str, Any]:
        """The keys :mod:`zoo.comparison.compare` adds to a summary row."""
        return {
            "diff_from_best": self.diff,
            "ci95": list(self.ci95) if self.ci95 is not None else None,
            "p_value": self.p_value,
            "verdict": self.verdict,
        }


def not_worse(diff: float | None, p_value: float | None, alpha: float = ALPHA) -> bool:
    """Whether a tested difference from the best is not significantly negative at ``alpha``
    (False when there was no test: no p-value)."""
    if p_value is None or diff is None:
        return False
    return p_value >= alpha or diff >= 0


def best_of(values: Mapping[str, Mapping[int, float]]) -> str | None:
    """The key with the highest mean of its values (the first one on a tie), None if none has
    a value."""
    means = {name: _mean(per_seed) for name, per_seed in values.items()}
    present = {name: mean for name, mean in means.items() if mean is not None}
    if not present:
        return None
    return max(present, key=lambda name: present[name])  # max keeps the first of equals


def paired_differences(
    values: Mapping[str, Mapping[int, float]], *, alpha: float = ALPHA
) -> dict[str, PairedResult]:
    """Compare each activation's per-seed values (``{activation: {seed: test accuracy}}``)
    with the best activation's (highest mean, the first one on a tie), seed by seed: the mean
    difference over the seeds both have, its ``1 - alpha`` confidence interval and the paired
    t-test's p-value. Activations without a value (None or nan) are left out."""
    clean = {name: _present(per_seed) for name, per_seed in values.items()}
    clean = {name: per_seed for name, per_seed in clean.items() if per_seed}
    best = best_of(clean)
    if best is None:
        return {}
    results = {}
    for name, per_seed in clean.items():
        if name == best:
            results[name] = PairedResult(name, best, 0.0, None, None, len(per_seed), "best", alpha)
            continue
        seeds = sorted(set(per_seed) & set(clean[best]))
        test = t_test_differences([per_seed[s] - clean[best][s] for s in seeds], alpha=alpha)
        verdict = _verdict(test, best, alpha)
        results[name] = PairedResult(
            name, best, test.mean, test.ci, test.p_value, test.n, verdict, alpha
        )
    return results


def _verdict(test: TTest, best: str, alpha: float) -> str:
    if test.n == 0:
        return f"no seed in common with {best}: no test possible"
    if test.p_value is None or test.mean is None:
        return "one seed: no test possible"
    level = f"{100 * alpha:g} %"
    shown = format_p_value(test.p_value, alpha)
    shown = f"p {shown}" if shown.startswith("<") else f"p = {shown}"
    if test.p_value < alpha:
        direction = "worse than" if test.mean < 0 else "better than"
        return f"{direction} {best} at {level} ({shown})"
    return f"not distinguishable from {best} at {level} ({shown})"


def format_p_value(p: float, alpha: float = ALPHA) -> str:
    """A p-value for reading: ``"< 0.001"``, ``"0.003"``, ``"0.41"``; never rounded across
    ``alpha`` (0.0499 is not shown as 0.05)."""
    if p < 0.001:
        return "< 0.001"
    for digits in range(2, 7):
        shown = f"{p:.{digits}g}"
        if (float(shown) < alpha) == (p < alpha):
            return shown
    return repr(p)


def _present(per_seed: Mapping[int, float]) -> dict[int, float]:
    return {
        seed: float(value)
        for seed, value in per_seed.items()
        if value is not None and not math.isnan(float(value))
    }


def _mean(per_seed: Mapping[int, float]) -> float | None:
    return statistics.fmean(per_seed.values()) if per_seed else None
