"""BLEU and chrF by sacreBLEU, with bootstrap intervals and paired differences over the same test pairs.

sacreBLEU computes every score (nothing hand-written): each sentence's sufficient statistics
(n-gram matches and counts) come from the metric itself, and a corpus score is the metric's own
function of their sums. A bootstrap resample sums the statistics of the resampled sentences, so
1,000 resamples cost 1,000 cheap sums, not 1,000 re-tokenizations. A paired difference uses the same
resampled sentences for both systems (:mod:`cnnrnn.intervals`' rule: better only where the 95% interval
lies above zero).
"""

from __future__ import annotations

import numpy as np

from cnnrnn.intervals import percentile_interval, resample_indices

METRICS = ("bleu", "chrf")


def metric(name: str):
    from sacrebleu.metrics import BLEU, CHRF

    return {"bleu": BLEU, "chrf": CHRF}[name]()


def sentence_statistics(name: str, hypotheses: list[str], references: list[str]) -> np.ndarray:
    """(N, k) sufficient statistics of each sentence for sacreBLEU's ``name`` (one reference each)."""
    return np.asarray(metric(name)._extract_corpus_statistics(hypotheses, [references]), dtype=np.float64)


def corpus_score(name: str, statistics: np.ndarray, scorer=None) -> float:
    """The corpus score of summed statistics (what ``corpus_score`` would give for those sentences)."""
    scorer = scorer or metric(name)
    return float(scorer._compute_score_from_stats(list(statistics)).score)


def score(name: str, hypotheses: list[str], references: list[str]) -> float:
    return float(metric(name).corpus_score(hypotheses, [references]).score)


def exact_matches(hypotheses: list[str], references: list[str]) -> np.ndarray:
    """(N,) 1.0 where the output is the reference exactly (up to surrounding whitespace)."""
    return np.array([float(h.strip() == r.strip()) for h, r in zip(hypotheses, references)])


def bootstrap(systems: dict[str, list[str]], references: list[str], resamples: int, seed: int
              ) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, np.ndarray]]]:
    """Scores of every system with 95% intervals, and the resampled scores (for paired differences).

    Out: ``{system: {"bleu", "bleu_ci95_low", ..., "exact_match", ...}}`` and ``{system: {metric: (R,)}}``.
    """
    draws = resample_indices(len(references), resamples, seed)
    figures: dict[str, dict[str, float]] = {}
    samples: dict[str, dict[str, np.ndarray]] = {}
    for system, hypotheses in systems.items():
        figures[system], samples[system] = {}, {}
        for name in METRICS:
            scorer = metric(name)
            stats = sentence_statistics(name, hypotheses, references)
            resampled = np.array([corpus_score(name, stats[d].sum(axis=0), scorer) for d in draws])
            figures[system][name] = round(corpus_score(name, stats.sum(axis=0), scorer), 2)
            samples[system][name] = resampled
        hits = exact_matches(hypotheses, references)
        samples[system]["exact_match"] = hits[draws].mean(axis=1)
        figures[system]["exact_match"] = round(float(hits.mean()), 4)
        for name in (*METRICS, "exact_match"):
            low, high = percentile_interval(samples[system][name])
            digits = 4 if name == "exact_match" else 2
            figures[system][f"{name}_ci95_low"], figures[system][f"{name}_ci95_high"] = round(low, digits), round(high, digits)
    return figures, samples


def paired_difference(a: np.ndarray, b: np.ndarray, observed: float) -> dict[str, float]:
    """``a - b`` on the same resamples: the observed difference, its 95% interval and a one-sided bootstrap p-value
    (the share of resamples where ``a`` is not better)."""
    difference = np.asarray(a) - np.asarray(b)
    low, high = percentile_interval(difference)
    return {"difference": round(observed, 3), "difference_ci95_low": round(low, 3), "difference_ci95_high": round(high, 3),
            "difference_p": round(float((difference <= 0).mean()), 4)}
