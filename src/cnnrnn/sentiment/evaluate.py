"""Evaluate every sentiment model on real snippets and on the contrast pairs, with intervals and paired tests.

One measurement (:func:`hits`: per-item right or wrong) serves both splits:

- ``validate`` (validation split, chooses defaults): ``<model>_val_accuracy``, ``val_accuracy`` (the
  ``primary_model``'s) and ``<model>_val_contrast_pair_accuracy`` on the validation shapes;
- ``evaluate`` (test split, reports only): ``<model>_test_accuracy``, ``test_accuracy``,
  ``<model>_contrast_seen_pair_accuracy`` (training templates, new words) and
  ``<model>_contrast_unseen_pair_accuracy`` (the test shapes; ``far_<model>_...``: the test templates whose
  shape is least like any training template's, ``nearest_shapes.csv``; ``far_<model>_test_accuracy``: the test
  snippets least like any training snippet, ``nearest.csv``), each with its 95% bootstrap interval
  (``_ci95_low`` / ``_ci95_high``, :mod:`cnnrnn.intervals`), and the primary model against every other
  on the same items: ``<primary>_vs_<model>_{test_accuracy,contrast_unseen_pair_accuracy}_difference``
  with interval (and McNemar's p-value for the snippets).

A pair counts if both its sentences are right. A bag of words scores both sentences of a pair alike
(same words), so its pair accuracy is 0 by construction. Pair accuracies are resampled by template (a cluster
bootstrap: a template's pairs are near-copies of each other, so they are drawn together). Baselines of no
trained model: on the contrast pairs, "the last adjective wins" and "the first adjective wins"
(``last_adjective_*``, ``first_adjective_*``: 0.5 by construction, each contrast set being balanced); on
the snippets, the sign of the summed lexicon ratings of the whole sentence (``lexicon_sum_*``) and of the
window model's last tokens (``lexicon_sum_last<k>_*``). Pictures and tables (``evaluate`` only): ``models.csv``
(the models side by side), ``contrast_shapes.csv`` (pair accuracy per sentence shape), ``contrast_scores.csv``
and ``contrast_pairs.png`` (each model's scores of the seen and unseen pairs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnrnn.errors import UserError
from cnnrnn.intervals import accuracy_with_interval, interval, paired_difference, verdict, with_interval
from cnnrnn.near_copies import far_items, read_nearest
from cnnrnn.paths import AppPaths
from cnnrnn.sentiment.contrast import adjective_heuristic
from cnnrnn.sentiment.network import BagOfWords
from cnnrnn.sentiment.predict import SentimentModel, load
from cnnrnn.sentiment.sentences import EncodedSentences, collate_sentences
from cnnrnn.table_picture import PLAIN, RIGHT, WRONG, save_table_picture

BAG_OF_WORDS_NOTE = "same words give the same score, so no pair can be right: 0 by construction"
# contrast set file -> metric name, for each split
TEST_CONTRAST = {"contrast_seen": "contrast_seen_pair_accuracy", "contrast_unseen": "contrast_unseen_pair_accuracy"}
VAL_CONTRAST = {"contrast_val": "val_contrast_pair_accuracy"}
COMPARED = ("test_accuracy", "contrast_unseen_pair_accuracy")  # the primary model against each other model
HEURISTICS = ("last_adjective", "first_adjective")  # "the last (first) adjective wins": baselines on the pairs


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


def contrast_table(prepared: Path, sets: list[str]):
    """The rows of ``contrast.csv`` of the contrast ``sets``, in the order of their ``.pt`` files."""
    import pandas as pd

    table = pd.read_csv(prepared / "contrast.csv")
    return table[table["set"].isin(sets)].reset_index(drop=True)


def pairs_per_template(table, set_name: str) -> int:
    """How many pairs each template of a contrast set has (the block a cluster bootstrap resamples): prepare gives
    every template as many, one after another."""
    rows = table[table["set"] == set_name]
    counts = rows.groupby("template", sort=False).size() // 2
    if counts.nunique() != 1 or (rows["template"] != rows["template"].shift()).sum() != len(counts):
        raise UserError(f"{set_name} in contrast.csv does not hold its templates' pairs together in equal numbers; "
                        "run `dvc repro sentiment_prepare` again")
    return int(counts.iloc[0])


def heuristic_hits(table, contrast: dict[str, str]) -> dict[str, dict[str, np.ndarray]]:
    """``{heuristic: {contrast metric: (P,) bool}}``: which pairs "the last (first) adjective wins" gets right. Adds
    each heuristic's label as the column ``<heuristic>_p_positive`` (0 or 1) of ``table``, beside the models'."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for heuristic in HEURISTICS:
        table[f"{heuristic}_p_positive"] = [float(adjective_heuristic(s, heuristic.split("_")[0]))
                                            for s in table["sentence"]]
        out[heuristic] = {}
        for set_name, metric in contrast.items():
            rows = table[table["set"] == set_name]
            out[heuristic][metric] = pair_hits((rows[f"{heuristic}_p_positive"] > 0.5).to_numpy() == rows["label"].to_numpy())
    return out


def far_test_snippets(nearest_csv: Path, count: int) -> np.ndarray | None:
    """(N,) bool: the test snippets in the farther half from training (``nearest.csv``, in test order); None without
    the file (a published split, as IMDB's, is not grouped)."""
    import pandas as pd

    if not nearest_csv.is_file():
        return None
    rows = pd.read_csv(nearest_csv, keep_default_na=False)
    similarity = rows.loc[rows["split"] == "test", "similarity"].to_numpy(dtype=np.float64)
    if len(similarity) != count:
        raise UserError(f"{nearest_csv} lists {len(similarity)} test snippets, test.pt {count}; "
                        "run `dvc repro sentiment_prepare` again")
    far = far_items({str(i): value for i, value in enumerate(similarity)})
    return np.array([str(i) in far for i in range(count)])


def pair_accuracy_with_interval(name: str, correct: np.ndarray, block: int, resamples: int, seed: int
                                ) -> dict[str, float]:
    """A pair accuracy and its 95% interval, resampling whole templates (``block`` pairs each, one after another)."""
    correct = np.asarray(correct, dtype=np.float64)
    return with_interval(name, correct.mean(), *interval(correct, resamples, seed, block))


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
    """Validation twins of the bar metrics, by the same code as ``evaluate``'s: accuracy and val-shape pair accuracy."""
    cfg = params["evaluate"]
    models = load(paths.model_dir, list(params["models"]))
    primary = primary_model(params, models)
    right, _ = hits(models, paths.prepared, "val", VAL_CONTRAST, cfg["batch_size"])
    right.update(heuristic_hits(contrast_table(paths.prepared, list(VAL_CONTRAST)), VAL_CONTRAST))
    metrics = {f"{name}_{metric}": round(float(h.mean()), 4) for name, figures in right.items()
               for metric, h in figures.items()}
    metrics.update({k: round(float(h.mean()), 4) for k, h in reference_hits(params, paths.prepared, "val").items()})
    return {"val_accuracy": metrics[f"{primary}_val_accuracy"], **metrics,
            "n_val": len(right[primary]["val_accuracy"]),
            "n_val_contrast_pairs": len(right[primary]["val_contrast_pair_accuracy"])}


def evaluate(params: dict[str, Any], paths: AppPaths) -> tuple[dict[str, Any], list[Path]]:
    cfg, seed = params["evaluate"], params["seed"]
    resamples = cfg["resamples"]
    models = load(paths.model_dir, list(params["models"]))
    primary = primary_model(params, models)
    right, probabilities = hits(models, paths.prepared, "test", TEST_CONTRAST, cfg["batch_size"])
    table = contrast_table(paths.prepared, list(TEST_CONTRAST))
    right.update(heuristic_hits(table, TEST_CONTRAST))
    blocks = {metric: pairs_per_template(table, set_name) for set_name, metric in TEST_CONTRAST.items()}
    unseen = table[table["set"] == "contrast_unseen"]
    templates = unseen["template"].to_numpy()[::2]  # one per pair
    far = far_items(read_nearest(paths.prepared / "nearest_shapes.csv"))
    far_pairs = np.array([t in far for t in templates])
    far_snippets = far_test_snippets(paths.prepared / "nearest.csv", len(right[primary]["test_accuracy"]))
    metrics: dict[str, Any] = {}
    for name, figures in right.items():
        for metric, h in figures.items():
            if metric in blocks:
                metrics.update(pair_accuracy_with_interval(f"{name}_{metric}", h, blocks[metric], resamples, seed))
            else:
                metrics.update(accuracy_with_interval(f"{name}_{metric}", h, resamples, seed))
        if "test_accuracy" in figures and far_snippets is not None:
            metrics.update(accuracy_with_interval(f"far_{name}_test_accuracy", figures["test_accuracy"][far_snippets],
                                                  resamples, seed))
        if "contrast_unseen_pair_accuracy" in figures:
            metrics.update(pair_accuracy_with_interval(f"far_{name}_contrast_unseen_pair_accuracy",
                                                       figures["contrast_unseen_pair_accuracy"][far_pairs],
                                                       blocks["contrast_unseen_pair_accuracy"], resamples, seed))
    comparisons: dict[str, dict[str, float]] = {}
    for name in right:
        if name == primary:
            continue
        for metric in COMPARED:
            if metric not in right[name]:
                continue
            key = f"{primary}_vs_{name}_{metric}"
            comparisons[key] = paired_difference(key, right[primary][metric], right[name][metric], resamples, seed,
                                                 block=blocks.get(metric, 1), mcnemar=metric not in blocks)
            metrics.update(comparisons[key])
    references = reference_hits(params, paths.prepared, "test")
    for key, h in references.items():
        metrics.update(accuracy_with_interval(key, h, resamples, seed))
    metrics = {"test_accuracy": metrics[f"{primary}_test_accuracy"],
               "test_accuracy_ci95_low": metrics[f"{primary}_test_accuracy_ci95_low"],
               "test_accuracy_ci95_high": metrics[f"{primary}_test_accuracy_ci95_high"], **metrics,
               "n_test": len(right[primary]["test_accuracy"]),
               **{f"n_{s}_pairs": len(right[primary][m]) for s, m in TEST_CONTRAST.items()},
               **{f"n_{s}_templates": len(right[primary][m]) // blocks[m] for s, m in TEST_CONTRAST.items()},
               "n_far_contrast_unseen_templates": len(far),
               **({"n_far_test": int(far_snippets.sum())} if far_snippets is not None else {})}

    paths.plots.mkdir(parents=True, exist_ok=True)
    for name in models:  # contrast.csv lists each set's sentences in the order of its .pt file
        table[f"{name}_p_positive"] = np.concatenate([probabilities[name][s] for s in table["set"].unique()]).round(3)
    files = [write_models_table(models, metrics, comparisons, primary, references, paths.plots / "models.csv"),
             write_shape_table(table, [*models, *HEURISTICS], resamples, seed, paths.plots / "contrast_shapes.csv")]
    scores_csv = paths.plots / "contrast_scores.csv"
    table.to_csv(scores_csv, index=False)
    picture = draw_contrast_table(table, list(models), cfg["pairs_shown"], paths.plots / "contrast_pairs.png")
    return metrics, [*files, scores_csv, picture]


def write_models_table(models: dict[str, SentimentModel], metrics: dict[str, Any], comparisons: dict[str, dict],
                       primary: str, references: dict[str, np.ndarray], path: Path) -> Path:
    """The models side by side, then the untrained baselines: each figure with its interval, and the primary
    model's paired difference and verdict."""
    import pandas as pd

    rows = []
    for name in [*models, *HEURISTICS]:
        row: dict[str, Any] = {"model": name if name in models else f"{name} wins (untrained baseline)"}
        for metric in ("test_accuracy", *TEST_CONTRAST.values()):
            row.update({k.removeprefix(f"{name}_"): v for k, v in metrics.items() if k.startswith(f"{name}_{metric}")})
        row.update({"far_" + k.removeprefix(f"far_{name}_"): v for k, v in metrics.items() if k.startswith(f"far_{name}_")})
        for metric in COMPARED:
            record = comparisons.get(f"{primary}_vs_{name}_{metric}")
            if record:
                row.update({f"{primary}_minus_model_" + k.removeprefix(f"{primary}_vs_{name}_").replace("_difference", ""): v
                            for k, v in record.items()})
                low, high = (record[f"{primary}_vs_{name}_{metric}_difference_ci95_{s}"] for s in ("low", "high"))
                row[f"{primary}_vs_model_{metric}"] = verdict(low, high)
        row["note"] = (BAG_OF_WORDS_NOTE if name in models and isinstance(models[name].network, BagOfWords) else
                       "" if name in models else "0.5 of the pairs by construction: half the templates take each side")
        rows.append(row)
    for key in references:  # untrained references: test accuracy only
        name = key.removesuffix("_test_accuracy")
        rows.append({"model": f"{name} (untrained reference)",
                     **{k.replace(name + "_", ""): v for k, v in metrics.items() if k.startswith(key)},
                     "note": "positive where the summed lexicon ratings are above 0"})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def write_shape_table(table, model_names: list[str], resamples: int, seed: int, path: Path) -> Path:
    """Pair accuracy of every model and baseline on every sentence shape of the seen and unseen sets, with intervals
    (templates resampled)."""
    import pandas as pd

    rows = []
    for (set_name, shape), group in table.groupby(["set", "shape"], sort=False):
        block = int(group.groupby("template").size().iloc[0]) // 2
        for name in model_names:
            correct = (group[f"{name}_p_positive"].to_numpy() > 0.5) == group["label"].to_numpy().astype(bool)
            record = pair_accuracy_with_interval("pair_accuracy", pair_hits(correct), block, resamples, seed)
            rows.append({"set": set_name, "shape": shape, "model": name, "templates": group["template"].nunique(),
                         "pairs": len(group) // 2, **record})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def draw_contrast_table(table, model_names: list[str], pairs_shown: int, path: Path) -> Path:
    """``pairs_shown`` pairs spread over the seen and unseen sets: sentence, true label, each model's p(positive),
    green if right."""
    import numpy as np

    table = table.assign(key=table["set"] + ":" + table["pair"].astype(str))
    keys = table["key"].unique()
    chosen = keys[np.linspace(0, len(keys) - 1, min(pairs_shown, len(keys))).round().astype(int)]  # every shape
    shown = list(table[table["key"].isin(chosen)].itertuples())
    cells = [[f"[{row.set.removeprefix('contrast_')}] {row.sentence}", "pos" if row.label else "neg",
              *[f"{getattr(row, f'{m}_p_positive'):.2f}" for m in model_names]] for row in shown]
    colours = [[PLAIN, PLAIN, *[RIGHT if (getattr(row, f"{m}_p_positive") > 0.5) == bool(row.label) else WRONG
                                for m in model_names]] for row in shown]
    return save_table_picture(cells, colours, ["sentence", "truth", *[f"{m} p(pos)" for m in model_names]],
                              [0.62, 0.07, *[0.31 / len(model_names)] * len(model_names)],
                              "Contrast pairs of seen and unseen sentence shapes: same words, opposite sentiment "
                              "(green = right)", path)
