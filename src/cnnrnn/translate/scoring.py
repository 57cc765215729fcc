"""BLEU and chrF by sacreBLEU, with bootstrap intervals and paired differences over the same test pairs.

sacreBLEU computes every score (nothing hand-written): each sentence's sufficient statistics
(n-gram matches and counts) come from the metric itself, and a corpus score is the metric's own
function of their sums. A bootstrap resample sums the statistics of the resampled sentences, so
1,000 resamples cost 1,000 cheap sums, not 1,000 re-tokenizations. A paired difference uses the same
resampled sentences for both systems (:mod:`cnnrnn.intervals`' rule: better only where the 95% interval
lies above zero). Test sources of one group of near-copies (``nearest.csv``'s groups: the split keeps a group
together, so a group may hold several test sources) are resampled together: a cluster bootstrap.

One item is one source sentence with *all* its human references (a source translated twice in the catalogs, as
"Le fichier" and "Fichier", is one item with two references): sacreBLEU takes them as reference streams (a
stream is ``None`` where a source has fewer references), and a resample draws sources, not pairs.
"""

from __future__ import annotations

import numpy as np

from cnnrnn.intervals import percentile_interval, resample_indices

METRICS = ("bleu", "chrf")


def metric(name: str):
    from sacrebleu.metrics import BLEU, CHRF

    return {"bleu": BLEU, "chrf": CHRF}[name]()


def reference_streams(references: list[list[str]]) -> list[list[str | None]]:
    """Each source's references (a list each) -> sacreBLEU's reference streams: stream k holds every source's k-th
    reference, ``None`` where it has fewer."""
    depth = max((len(r) for r in references), default=1)
    return [[refs[k] if k < len(refs) else None for refs in references] for k in range(depth)]


def sentence_statistics(name: str, hypotheses: list[str], references: list[list[str]]) -> np.ndarray:
    """(N, k) sufficient statistics of each sentence for sacreBLEU's ``name`` against all its references."""
    return np.asarray(metric(name)._extract_corpus_statistics(hypotheses, reference_streams(references)),
                      dtype=np.float64)


def corpus_score(name: str, statistics: np.ndarray, scorer=None) -> float:
    """The corpus score of summed statistics (what ``corpus_score`` would give for those sentences)."""
    scorer = scorer or metric(name)
    return float(scorer._compute_score_from_stats(list(statistics)).score)


def score(name: str, hypotheses: list[str], references: list[list[str]]) -> float:
    """The corpus score of ``hypotheses`` against each one's references (a list each)."""
    return float(metric(name).corpus_score(hypotheses, reference_streams(references)).score)


def exact_matches(hypotheses: list[str], references: list[list[str]]) -> np.ndarray:
    """(N,) 1.0 where the output is one of its references exactly (up to surrounding whitespace)."""
    return np.array([float(any(h.strip() == r.strip() for r in refs)) for h, refs in zip(hypotheses, references)])


def cluster_resample_indices(clusters: list, resamples: int, seed: int) -> list[np.ndarray]:
    """A cluster bootstrap: each resample draws whole clusters (``clusters[i]`` names item i's) with replacement and
    returns their items' indices (lengths vary). With every item its own cluster it draws exactly what
    :func:`~cnnrnn.intervals.resample_indices` draws."""
    members: dict = {}
    for index, cluster in enumerate(clusters):
        members.setdefault(cluster, []).append(index)
    groups = [np.array(v, dtype=np.int64) for v in members.values()]
    draws = resample_indices(len(groups), resamples, seed)
    return [np.concatenate([groups[g] for g in draw]) for draw in draws]


def bootstrap(systems: dict[str, list[str]], references: list[list[str]], resamples: int, seed: int,
              groups: list[str] | None = None) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, np.ndarray]]]:
    """Scores of every system with 95% intervals, and the resampled scores (for paired differences). ``groups``
    (one name per source; default: each source its own): sources of one group of near-copies are resampled together.

    Out: ``{system: {"bleu", "bleu_ci95_low", ..., "exact_match", ...}}`` and ``{system: {metric: (R,)}}``.
    """
    draws = cluster_resample_indices(groups if groups is not None else list(range(len(references))), resamples, seed)
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
        samples[system]["exact_match"] = np.array([hits[d].mean() for d in draws])
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
