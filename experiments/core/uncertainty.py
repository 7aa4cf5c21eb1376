"""When a report may call one score better than another.

Two rules, one per kind of evidence. A single test score of each model (two models on one test split, two search
families at one budget): the gap must exceed twice its binomial standard error, thousands of test examples making
the normal approximation sound. Means over a few seeds (an ablation level against its base): the gap must exceed
its Welch t interval, whose quantile grows as the seeds get fewer (about 2.8 standard errors for 3 seeds a side,
not 2), since the seed-to-seed spread is itself estimated from those few seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

CONFIDENCE = 0.95  # two-sided: where two arms do not differ, 5 % of seed comparisons still call one better


def standard_error(accuracy: float, n: int) -> float | None:
    """Binomial standard error of an accuracy measured on n examples: the noise two test scores differ by."""
    return (accuracy * (1 - accuracy) / n) ** 0.5 if n > 0 else None


def with_error(accuracy: float, n: int, percent: bool = False) -> str:
    """`0.8988 ± 0.0019` (or `89.88% ± 0.19` points) where the test split's size is known."""
    error = standard_error(accuracy, n)
    if percent:
        return f"{accuracy:.2%}" + (f" ± {error * 100:.2f}" if error is not None else "")
    return f"{accuracy:.4f}" + (f" ± {error:.4f}" if error is not None else "")


def gap_and_error(first: float, second: float, n: int) -> tuple[float, float | None]:
    """first − second and the standard error of that gap, each accuracy measured on n test examples (treated as
    independent, which overstates the error a little when both models saw the same examples: a cautious verdict)."""
    errors = [standard_error(a, n) for a in (first, second)]
    error = None if None in errors else (errors[0] ** 2 + errors[1] ** 2) ** 0.5
    return first - second, error


def verdict(gap: float, error: float | None) -> str:
    """'better' / 'worse' for the first of the two, or 'no measurable difference' within twice the error."""
    if error is not None and abs(gap) > 2 * error > 0:
        return "better" if gap > 0 else "worse"
    return "no measurable difference"


def t_quantile(probability: float, degrees_of_freedom: float) -> float:
    """The Student t quantile (scipy's, imported here only: reports that draw no seed comparison never load it)."""
    from scipy.stats import t

    return float(t.ppf(probability, degrees_of_freedom))


@dataclass(frozen=True)
class SeedGap:
    """The gap between two means over seeds, its standard error, Welch–Satterthwaite degrees of freedom and the
    half-width of its two-sided CONFIDENCE interval (None where a side has one seed: no spread to judge by)."""

    gap: float
    error: float
    degrees_of_freedom: float | None
    half_width: float | None

    @property
    def t(self) -> float | None:
        return self.gap / self.error if self.error > 0 else None


def welch_gap(first: tuple[float, float, int], second: tuple[float, float, int]) -> SeedGap:
    """first − second for two (mean, sample std, seeds) without assuming equal spreads (Welch's t)."""
    (mean_a, std_a, n_a), (mean_b, std_b, n_b) = first, second
    var_a, var_b = std_a ** 2 / n_a, std_b ** 2 / n_b
    error = (var_a + var_b) ** 0.5
    if n_a < 2 or n_b < 2 or error == 0:
        return SeedGap(mean_a - mean_b, error, None, None)
    df = (var_a + var_b) ** 2 / (var_a ** 2 / (n_a - 1) + var_b ** 2 / (n_b - 1))
    return SeedGap(mean_a - mean_b, error, df, t_quantile(0.5 + CONFIDENCE / 2, df) * error)


def seed_verdict(gap: SeedGap) -> str:
    """'better' / 'worse' for the first where its Welch interval excludes zero, else 'no measurable difference'.
    `gap.gap` must already be oriented (positive: the first is better) by the metric."""
    if gap.half_width is not None and abs(gap.gap) > gap.half_width:
        return "better" if gap.gap > 0 else "worse"
    return "no measurable difference"


def chance_of_a_false_verdict(comparisons: int) -> float:
    """How likely at least one of `comparisons` independent tests at CONFIDENCE calls a difference where there is
    none (no correction for multiplicity is applied to the verdicts; the report states this instead)."""
    return 1 - CONFIDENCE ** comparisons
