"""Evaluate every sentiment model on real snippets and on the contrast pairs, with intervals and paired tests.

One measurement (:func:`hits`: per-item right or wrong) serves both splits:

- ``validate`` (validation split, chooses defaults): ``<model>_val_accuracy``, ``val_accuracy`` (the
  ``primary_model``'s) and ``<model>_val_contrast_pair_accuracy`` on the validation families;
- ``evaluate`` (test split, reports only): ``<model>_test_accuracy``, ``test_accuracy``,
  ``<model>_contrast_seen_pair_accuracy`` (training constructions, new words) and
  ``<model>_contrast_unseen_pair_accuracy`` (the test families), each with its 95% bootstrap interval
  (``_ci95_low`` / ``_ci95_high``, :mod:`cnnrnn.intervals`), and the primary model against every other
  on the same items: ``<primary>_vs_<model>_{test_accuracy,contrast_unseen_pair_accuracy}_difference``
  with interval and McNemar p-value.

A pair counts if both its sentences are right. A bag of words scores both sentences of a pair alike
(same words), so its pair accuracy is 0 by construction. Reference figures of no trained model: the
sign of the summed lexicon ratings of the whole sentence (``lexicon_sum_*``) and of the window model's
last tokens (``lexicon_sum_last<k>_*``). Pictures and tables (``evaluate`` only): ``models.csv`` (the
models side by side), ``contrast_families.csv`` (pair accuracy per construction family),
``contrast_scores.csv`` and ``contrast_pairs.png`` (each model's scores of the seen and unseen pairs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnrnn.errors import UserError
from cnnrnn.intervals import accuracy_with_interval, paired_difference, verdict
from cnnrnn.paths import AppPaths
from cnnrnn.sentiment.network import BagOfWords
from cnnrnn.sentiment.predict import SentimentModel, load
from cnnrnn.sentiment.sentences import EncodedSentences, collate_sentences
from cnnrnn.table_picture import PLAIN, RIGHT, WRONG, save_table_picture

BAG_OF_WORDS_NOTE = "same words give the same score, so no pair can be right: 0 by construction"
# contrast set file -> metric name, for each split
TEST_CONTRAST = {"contrast_seen": "contrast_seen_pair_accuracy", "contrast_unseen": "contrast_unseen_pair_accuracy"}
VAL_CONTRAST = {"contrast_val": "val_contrast_pair_accuracy"}
COMPARED = ("test_accuracy", "contrast_unseen_pair_accuracy")  # the primary model against each other model


def split_probabilities(model: SentimentModel, dataset: EncodedSentences, batch_size: int) -> torch.Tensor:
    """Probability of positive for every sentence of ``dataset``, in order (N,)."""
    out = []
    for start in range(0, len(dataset), batch_size):
        ids, lengths, _ = collate_sentences([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        out.append(model.probabilities(ids, lengths))
    return torch.cat(out)


def pair_hits(correct: np.ndarray) -> np.ndarray:
    """Sentences 2i and 2i+1 form pair i; (2P,) -> (P,): a pair counts if both are right."""
    return np.asarray(correct, bool).reshape(-1, 2).all(1)


def hits(models: dict[str, SentimentModel], prepared: Path, split: str, contrast: dict[str, str], batch_size: int
         ) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, dict[str, np.ndarray]]]:
    """Which items each model gets right, on ``split``'s sentences and on each contrast set of ``contrast``.

    Out: ``{model: {"<split>_accuracy": (N,) bool, <contrast metric>: (P,) bool per pair}}`` and the
    contrast sentences' probabilities ``{model: {contrast set: (2P,)}}``.
    """
    sentences = EncodedSentences(prepared / f"{split}.pt")
    sets = {name: EncodedSentences(prepared / f"{name}.pt") for name in contrast}
    right: dict[str, dict[str, np.ndarray]] = {}
    probabilities: dict[str, dict[str, np.ndarray]] = {}
    for name, model in models.items():
        p = split_probabilities(model, sentences, batch_size)
        right[name] = {f"{split}_accuracy": ((p > 0.5).long() == sentences.labels).numpy()}
        probabilities[name] = {}
        for set_name, metric in contrast.items():
            p = split_probabilities(model, sets[set_name], batch_size)
            right[name][metric] = pair_hits(((p > 0.5).long() == sets[set_name].labels).numpy())
            probabilities[name][set_name] = p.numpy()
    return right, probabilities


def lexicon_sum_hits(prepared: Path, split: str, last: int | None = None) -> np.ndarray:
    """An untrained reference: positive where the summed lexicon ratings of the sentence (or of its ``last``
    tokens) are above 0. (N,) bool."""
    sentences = EncodedSentences(prepared / f"{split}.pt")
    lexicon = torch.load(prepared / "lexicon.pt")
    sums = torch.stack([lexicon[s[-last:] if last else s].sum() for s in sentences.sentences])
    return ((sums > 0).long() == sentences.labels).numpy()


def reference_hits(params: dict[str, Any], prepared: Path, split: str) -> dict[str, np.ndarray]:
    """``lexicon_sum_<split>_accuracy`` and, with a window model, ``lexicon_sum_last<k>_<split>_accuracy`` hits."""
    out = {f"lexicon_sum_{split}_accuracy": lexicon_sum_hits(prepared, split)}
    windows = {m["window"] for m in params["models"].values() if m.get("kind") == "window"}
    out.update({f"lexicon_sum_last{k}_{split}_accuracy": lexicon_sum_hits(prepared, split, k) for k in sorted(windows)})
    return out


def primary_model(params: dict[str, Any], models: dict[str, SentimentModel]) -> str:
    primary = params["evaluate"]["primary_model"]
    if primary not in models:
        raise UserError(f"sentiment.evaluate.primary_model is {primary!r}, but the trained models are "
                        f"{', '.join(models)}; set it to one of them")
    return primary


def validate(params: dict[str, Any], paths: AppPaths) -> dict[str, Any]:
    """Validation twins of the bar metrics, by the same code as ``evaluate``'s: accuracy and val-family pair accuracy."""
    cfg = params["evaluate"]
    models = load(paths.model_dir, list(params["models"]))
    primary = primary_model(params, models)
    right, _ = hits(models, paths.prepared, "val", VAL_CONTRAST, cfg["batch_size"])
    metrics = {f"{name}_{metric}": round(float(h.mean()), 4) for name, figures in right.items()
               for metric, h in figures.items()}
    metrics.update({k: round(float(h.mean()), 4) for k, h in reference_hits(params, paths.prepared, "val").items()})
    return {"val_accuracy": metrics[f"{primary}_val_accuracy"], **metrics,
            "n_val": len(right[primary]["val_accuracy"]),
            "n_val_contrast_pairs": len(right[primary]["val_contrast_pair_accuracy"])}


def evaluate(params: dict[str, Any], paths: AppPaths) -> tuple[dict[str, Any], list[Path]]:
    import pandas as pd

    cfg, seed = params["evaluate"], params["seed"]
    resamples = cfg["resamples"]
    models = load(paths.model_dir, list(params["models"]))
    primary = primary_model(params, models)
    right, probabilities = hits(models, paths.prepared, "test", TEST_CONTRAST, cfg["batch_size"])
    metrics: dict[str, Any] = {}
    for name, figures in right.items():
        for metric, h in figures.items():
            metrics.update(accuracy_with_interval(f"{name}_{metric}", h, resamples, seed))
    comparisons: dict[str, dict[str, float]] = {}
    for name in models:
        if name == primary:
            continue
        for metric in COMPARED:
            key = f"{primary}_vs_{name}_{metric}"
            comparisons[key] = paired_difference(key, right[primary][metric], right[name][metric], resamples, seed,
                                                 mcnemar=True)
            metrics.update(comparisons[key])
    references = reference_hits(params, paths.prepared, "test")
    for key, h in references.items():
        metrics.update(accuracy_with_interval(key, h, resamples, seed))
    metrics = {"test_accuracy": metrics[f"{primary}_test_accuracy"],
               "test_accuracy_ci95_low": metrics[f"{primary}_test_accuracy_ci95_low"],
               "test_accuracy_ci95_high": metrics[f"{primary}_test_accuracy_ci95_high"], **metrics,
               "n_test": len(right[primary]["test_accuracy"]),
               **{f"n_{s}_pairs": len(right[primary][m]) for s, m in TEST_CONTRAST.items()}}

    paths.plots.mkdir(parents=True, exist_ok=True)
    table = pd.read_csv(paths.prepared / "contrast.csv")
    table = table[table["set"].isin(list(TEST_CONTRAST))].reset_index(drop=True)
    for name in models:  # contrast.csv lists each set's sentences in the order of its .pt file
        table[f"{name}_p_positive"] = np.concatenate([probabilities[name][s] for s in table["set"].unique()]).round(3)
    files = [write_models_table(models, metrics, comparisons, primary, references, paths.plots / "models.csv"),
             write_family_table(table, list(models), resamples, seed, paths.plots / "contrast_families.csv")]
    scores_csv = paths.plots / "contrast_scores.csv"
    table.to_csv(scores_csv, index=False)
    picture = draw_contrast_table(table, list(models), cfg["pairs_shown"], paths.plots / "contrast_pairs.png")
    return metrics, [*files, scores_csv, picture]


def write_models_table(models: dict[str, SentimentModel], metrics: dict[str, Any], comparisons: dict[str, dict],
                       primary: str, references: dict[str, np.ndarray], path: Path) -> Path:
    """The models side by side: each figure with its interval, and the primary model's paired difference and verdict."""
    import pandas as pd

    rows = []
    for name, model in models.items():
        row: dict[str, Any] = {"model": name}
        for metric in ("test_accuracy", *TEST_CONTRAST.values()):
            row.update({k.removeprefix(f"{name}_"): v for k, v in metrics.items() if k.startswith(f"{name}_{metric}")})
        for metric in COMPARED:
            record = comparisons.get(f"{primary}_vs_{name}_{metric}")
            if record:
                row.update({f"{primary}_minus_model_" + k.removeprefix(f"{primary}_vs_{name}_").replace("_difference", ""): v
                            for k, v in record.items()})
                low, high = (record[f"{primary}_vs_{name}_{metric}_difference_ci95_{s}"] for s in ("low", "high"))
                row[f"{primary}_vs_model_{metric}"] = verdict(low, high)
        row["note"] = BAG_OF_WORDS_NOTE if isinstance(model.network, BagOfWords) else ""
        rows.append(row)
    for key in references:  # untrained references: test accuracy only
        name = key.removesuffix("_test_accuracy")
        rows.append({"model": f"{name} (untrained reference)",
                     **{k.replace(name + "_", ""): v for k, v in metrics.items() if k.startswith(key)},
                     "note": "positive where the summed lexicon ratings are above 0"})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def write_family_table(table, model_names: list[str], resamples: int, seed: int, path: Path) -> Path:
    """Pair accuracy of every model on every construction family of the seen and unseen sets, with intervals."""
    import pandas as pd

    rows = []
    for (set_name, family), group in table.groupby(["set", "family"], sort=False):
        for name in model_names:
            correct = (group[f"{name}_p_positive"].to_numpy() > 0.5) == group["label"].to_numpy().astype(bool)
            record = accuracy_with_interval("pair_accuracy", pair_hits(correct), resamples, seed)
            rows.append({"set": set_name, "family": family, "model": name, "pairs": len(group) // 2, **record})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def draw_contrast_table(table, model_names: list[str], pairs_shown: int, path: Path) -> Path:
    """``pairs_shown`` pairs spread over the seen and unseen sets: sentence, true label, each model's p(positive),
    green if right."""
    import numpy as np

    table = table.assign(key=table["set"] + ":" + table["pair"].astype(str))
    keys = table["key"].unique()
    chosen = keys[np.linspace(0, len(keys) - 1, min(pairs_shown, len(keys))).round().astype(int)]  # every family
    shown = list(table[table["key"].isin(chosen)].itertuples())
    cells = [[f"[{row.set.removeprefix('contrast_')}] {row.sentence}", "pos" if row.label else "neg",
              *[f"{getattr(row, f'{m}_p_positive'):.2f}" for m in model_names]] for row in shown]
    colours = [[PLAIN, PLAIN, *[RIGHT if (getattr(row, f"{m}_p_positive") > 0.5) == bool(row.label) else WRONG
                                for m in model_names]] for row in shown]
    return save_table_picture(cells, colours, ["sentence", "truth", *[f"{m} p(pos)" for m in model_names]],
                              [0.62, 0.07, *[0.31 / len(model_names)] * len(model_names)],
                              "Contrast pairs of seen and unseen constructions: same words, opposite sentiment "
                              "(green = right)", path)
