"""When a report may call one accuracy better than another: only when the gap exceeds twice its standard error.

One rule for every comparison the reports draw (two models on one test split, two search families at one
budget, an ablation level against its base over seeds), so "better" means the same thing in each.
"""

from __future__ import annotations


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
