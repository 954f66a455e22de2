"""``zoo.comparison.stats``: the Student t distribution against known values, and the paired t-test
across
seeds that ``zoo compare`` reports (one seed, ties, zero variance). Pure Python: fast."""

from __future__ import annotations

import math
import statistics

import pytest

from zoo.comparison.stats import (
    betainc,
    format_p_value,
    paired_differences,
    t_cdf,
    t_ppf,
    t_test_differences,
    t_two_sided_p,
)


@pytest.mark.parametrize(
    ("p", "df", "expected"),
    [
        (0.975, 1, 12.706205),
        (0.975, 2, 4.302653),
        (0.975, 4, 2.776445),
        (0.975, 5, 2.570582),
        (0.975, 29, 2.045230),
        (0.975, 1000, 1.962339),
        (0.995, 3, 5.840909),
        (0.9, 10, 1.372184),
        (0.9999, 1, 3183.098757),
        (0.025, 2, -4.302653),
        (0.5, 7, 0.0),
    ],
)
def test_t_quantiles_match_tables(p: float, df: int, expected: float) -> None:
    assert t_ppf(p, df) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("t", "df", "expected"),
    [(2.0, 5, 0.101939), (2.0, 1, 0.295167), (1.0, 30, 0.325309), (3.0, 10, 0.013344)],
)
def test_two_sided_p_values_match_tables(t: float, df: int, expected: float) -> None:
    assert t_two_sided_p(t, df) == pytest.approx(expected, abs=1e-6)
    assert t_two_sided_p(-t, df) == pytest.approx(expected, abs=1e-6)


def test_cdf_and_quantile_are_inverse_and_symmetric() -> None:
    for df in (1, 2.5, 9, 200):
        for p in (1e-6, 0.01, 0.3, 0.7, 0.99):
            assert t_cdf(t_ppf(p, df), df) == pytest.approx(p, rel=1e-9)
        assert t_cdf(1.3, df) + t_cdf(-1.3, df) == pytest.approx(1.0)
    assert t_cdf(0.0, 3) == 0.5
    assert t_ppf(1.0, 3) == math.inf and t_ppf(0.0, 3) == -math.inf
    assert t_two_sided_p(math.inf, 3) == 0.0 and t_two_sided_p(0.0, 3) == 1.0


def test_incomplete_beta_known_values() -> None:
    assert betainc(1.0, 1.0, 0.3) == pytest.approx(0.3)  # uniform
    assert betainc(2.0, 3.0, 0.4) == pytest.approx(0.5248)
    assert betainc(0.5, 0.5, 0.5) == pytest.approx(0.5)
    assert betainc(2.0, 3.0, 0.0) == 0.0 and betainc(2.0, 3.0, 1.0) == 1.0


@pytest.mark.parametrize(("p", "df"), [(1.5, 3), (-0.1, 3), (math.nan, 3), (0.5, 0), (0.5, -1)])
def test_bad_arguments_raise(p: float, df: float) -> None:
    with pytest.raises(ValueError):
        t_ppf(p, df)


def test_the_paired_test_matches_a_hand_computation() -> None:
    best = {0: 0.97, 1: 0.96, 2: 0.98, 3: 0.97}
    other = {0: 0.95, 1: 0.955, 2: 0.96, 3: 0.962}
    results = paired_differences({"relu": best, "tanh": other})
    assert results["relu"].verdict == "best" and results["relu"].diff == 0.0
    assert results["relu"].ci95 is None and results["relu"].p_value is None
    tanh = results["tanh"]
    diffs = [other[s] - best[s] for s in range(4)]
    mean, se = statistics.fmean(diffs), statistics.stdev(diffs) / 2
    assert tanh.n == 4 and tanh.best == "relu"
    assert tanh.diff == pytest.approx(mean)
    assert tanh.p_value == pytest.approx(t_two_sided_p(mean / se, 3))
    assert tanh.p_value < 0.05
    assert tanh.ci95 == pytest.approx((mean - 3.182446 * se, mean + 3.182446 * se), abs=1e-8)
    assert tanh.verdict.startswith("worse than relu at 5 % (p = ")
    assert tanh.to_dict()["ci95"] == list(tanh.ci95)  # type: ignore[arg-type]


def test_noisy_differences_are_not_distinguishable() -> None:
    results = paired_differences(
        {"relu": {0: 0.90, 1: 0.80, 2: 0.95}, "gelu": {0: 0.91, 1: 0.70, 2: 0.96}}
    )
    gelu = results["gelu"]
    assert results["relu"].verdict == "best"
    assert gelu.p_value is not None and gelu.p_value > 0.05
    assert gelu.ci95 is not None and gelu.ci95[0] < 0 < gelu.ci95[1]
    assert gelu.verdict.startswith("not distinguishable from relu at 5 % (p = 0.")
    assert gelu.tied_with_best and not gelu.is_best


def test_the_pairing_uses_only_the_seeds_both_have() -> None:
    results = paired_differences({"a": {0: 0.9, 1: 0.8, 2: 0.7}, "b": {1: 0.6, 2: 0.5, 5: 0.99}})
    assert results["a"].verdict == "best"  # mean 0.8 against b's 0.6967
    assert results["b"].n == 2
    assert results["b"].diff == pytest.approx(-0.2)


def test_one_seed_allows_no_test() -> None:
    results = paired_differences({"relu": {0: 0.9}, "tanh": {0: 0.85}})
    tanh = results["tanh"]
    assert tanh.n == 1 and tanh.diff == pytest.approx(-0.05)
    assert tanh.ci95 is None and tanh.p_value is None
    assert "no test possible" in tanh.verdict
    assert not tanh.tied_with_best
    disjoint = paired_differences({"relu": {0: 0.9}, "tanh": {1: 0.85}})["tanh"]
    assert disjoint.n == 0 and disjoint.diff is None and "no test possible" in disjoint.verdict


def test_ties_pick_the_first_and_equal_runs_give_p_one() -> None:
    same = {0: 0.9, 1: 0.8}
    results = paired_differences({"tanh": dict(same), "relu": dict(same)})
    assert results["tanh"].verdict == "best"  # the first of equal means
    relu = results["relu"]
    assert relu.diff == 0.0 and relu.p_value == 1.0 and relu.ci95 == (0.0, 0.0)
    assert relu.verdict.startswith("not distinguishable from tanh")
    # equal means, different per-seed values: a real test with mean difference 0
    crossed = paired_differences({"a": {0: 0.9, 1: 0.8}, "b": {0: 0.8, 1: 0.9}})["b"]
    assert crossed.diff == pytest.approx(0.0, abs=1e-12)
    assert crossed.p_value == pytest.approx(1.0)


def test_zero_variance_differences_do_not_divide_by_zero() -> None:
    results = paired_differences({"relu": {0: 0.9, 1: 0.8, 2: 0.7}, "elu": {0: 0.8, 1: 0.7}})
    elu = results["elu"]  # the same difference, -0.1 up to rounding, on both seeds
    assert elu.p_value == 0.0
    assert elu.ci95 == (pytest.approx(-0.1), pytest.approx(-0.1))
    assert elu.verdict == "worse than relu at 5 % (p < 0.001)"
    assert t_test_differences([0.0, 0.0, 0.0]).p_value == 1.0
    assert t_test_differences([]).n == 0


def test_missing_values_are_left_out() -> None:
    results = paired_differences({"relu": {0: 0.9, 1: math.nan}, "none": {}, "tanh": {0: 0.5}})
    assert set(results) == {"relu", "tanh"} and results["relu"].n == 1
    assert paired_differences({}) == {}


def test_p_values_are_not_rounded_across_the_level() -> None:
    assert format_p_value(0.0004) == "< 0.001"
    assert format_p_value(0.003) == "0.003"
    assert format_p_value(0.41) == "0.41"
    assert format_p_value(0.0499) == "0.0499"
    assert format_p_value(1.0) == "1"
