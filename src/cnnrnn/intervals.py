"""Error bars and paired tests: bootstrap intervals over test items, McNemar's test, and one rule for "better".

Every headline test metric gets a 95% percentile-bootstrap interval: the test items (images,
sentences, or for running text contiguous blocks of tokens) are resampled with replacement.
Every model-vs-baseline comparison is paired: the *same* resampled items score both models, and
the model is called better only where the 95% interval of the difference lies above zero
(:func:`verdict`); an interval that includes zero is "within noise".

Metric names in ``metrics/<app>.json`` (flat, for ``dvc metrics show``):

- ``<metric>_ci95_low`` / ``<metric>_ci95_high``: the interval of ``<metric>``;
- ``<a>_vs_<b>_<metric>_difference`` with its ``_ci95_low`` / ``_ci95_high`` (and ``_mcnemar_p``
  where the metric is a per-item hit or miss): ``a`` minus ``b`` on the same items.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

LEVEL = 0.95


def resample_indices(n_units: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, n_units) indices drawn with replacement; the same seed gives the same draws."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_units, size=(resamples, n_units))


def block_sums(values: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Sums and counts of ``values`` (N,) over contiguous blocks of ``block`` items (the last may be shorter)."""
    values = np.asarray(values, dtype=np.float64)
    starts = np.arange(0, len(values), block)
    return np.add.reduceat(values, starts), np.diff(np.append(starts, len(values))).astype(np.float64)


def resampled_means(columns: dict[str, np.ndarray], resamples: int = 1000, seed: int = 0,
                    block: int = 1) -> dict[str, np.ndarray]:
    """The mean of each column over ``resamples`` bootstrap resamples of the same items.

    ``columns``: name -> (N,) per-item values (all of the same N items, e.g. 1/0 hits of two models
    on the same sentences). ``block`` > 1 resamples contiguous blocks of that many items (running
    text, where neighbouring tokens are not independent); a mean is then total over count.
    Out: name -> (resamples,) means, drawn with the same indices for every column (paired).
    """
    names = list(columns)
    sums, counts = zip(*(block_sums(columns[n], block) for n in names))
    draws = resample_indices(len(counts[0]), resamples, seed)
    totals = counts[0][draws].sum(axis=1)
    return {n: s[draws].sum(axis=1) / totals for n, s in zip(names, sums)}


def percentile_interval(samples: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(np.asarray(samples, dtype=np.float64), [tail, 100 - tail])
    return float(low), float(high)


def interval(values: np.ndarray, resamples: int = 1000, seed: int = 0, block: int = 1,
             transform: Callable[[np.ndarray], np.ndarray] | None = None) -> tuple[float, float]:
    """95% interval of ``transform(mean(values))`` (e.g. ``np.exp`` of a mean log-loss is a perplexity)."""
    means = resampled_means({"v": values}, resamples, seed, block)["v"]
    return percentile_interval(transform(means) if transform else means)


def mcnemar_p(a_correct: np.ndarray, b_correct: np.ndarray) -> float:
    """Two-sided exact McNemar p-value: do two classifiers err on the same items equally often?

    Only the discordant items count (``a`` right and ``b`` wrong, or the reverse); under the null
    each is a fair coin, so the p-value is a two-sided binomial tail.
    """
    from math import comb

    a, b = np.asarray(a_correct, bool), np.asarray(b_correct, bool)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    if n > 1000:  # normal approximation with continuity correction; exact sums get slow
        from math import erfc, sqrt

        z = (abs(only_a - only_b) - 1) / sqrt(n)
        return float(min(1.0, erfc(max(z, 0) / sqrt(2))))
    tail = sum(comb(n, i) for i in range(k + 1)) / 2 ** n
    return float(min(1.0, 2 * tail))


def verdict(low: float, high: float) -> str:
    """The one rule for "better": the 95% interval of the paired difference lies above zero."""
    if low > 0:
        return "better"
    if high < 0:
        return "worse"
    return "within noise"


def with_interval(name: str, value: float, low: float, high: float, digits: int = 4) -> dict[str, float]:
    """``{name: value, name_ci95_low: low, name_ci95_high: high}``, rounded."""
    return {name: round(float(value), digits), f"{name}_ci95_low": round(low, digits),
            f"{name}_ci95_high": round(high, digits)}


def accuracy_with_interval(name: str, correct: np.ndarray, resamples: int = 1000, seed: int = 0,
                           digits: int = 4) -> dict[str, float]:
    """A per-item hit rate and its bootstrap interval, under ``name``."""
    correct = np.asarray(correct, dtype=np.float64)
    return with_interval(name, correct.mean() if len(correct) else 0.0,
                         *interval(correct, resamples, seed) if len(correct) else (0.0, 0.0), digits)


def paired_difference(name: str, a: np.ndarray, b: np.ndarray, resamples: int = 1000, seed: int = 0,
                      block: int = 1, transform: Callable[[np.ndarray], np.ndarray] | None = None,
                      mcnemar: bool = False, digits: int = 4) -> dict[str, float]:
    """``transform(mean a) - transform(mean b)`` on the same items, with its paired bootstrap interval.

    ``a``, ``b``: (N,) per-item values of two models on the same items (hits, or log-losses with
    ``transform=np.exp`` for a perplexity difference). ``mcnemar`` adds the exact McNemar p-value
    (for 1/0 hits). Out: ``name_difference``, ``name_difference_ci95_low`` / ``_high`` [, ``name_mcnemar_p``].
    """
    means = resampled_means({"a": a, "b": b}, resamples, seed, block)
    f = transform or (lambda x: x)
    value = f(np.atleast_1d(np.mean(np.asarray(a, np.float64))))[0] - f(np.atleast_1d(np.mean(np.asarray(b, np.float64))))[0]
    record = with_interval(f"{name}_difference", value, *percentile_interval(f(means["a"]) - f(means["b"])), digits)
    if mcnemar:
        record[f"{name}_mcnemar_p"] = round(mcnemar_p(a, b), 6)
    return record
