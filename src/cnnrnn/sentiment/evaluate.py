"""Evaluate every sentiment model on held-out real snippets and on the contrast pairs.

Metrics per model: ``<model>_test_accuracy``, ``<model>_contrast_accuracy`` (sentences) and
``<model>_contrast_pair_accuracy`` (both sentences of a pair right); ``test_accuracy`` is the
``primary_model``'s. A bag of words scores both sentences of a pair alike (same words), so its
pair accuracy is 0 by construction. Pictures: the contrast pairs as a table of each model's scores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from cnnrnn.sentiment.sentences import EncodedSentences, collate_sentences
from cnnrnn.sentiment.network import BagOfWords
from cnnrnn.sentiment.predict import SentimentModel, load
from cnnrnn.errors import UserError
from cnnrnn.paths import AppPaths
from cnnrnn.table_picture import PLAIN, RIGHT, WRONG, save_table_picture

BAG_OF_WORDS_NOTE = "same words give the same score, so no pair can be right: 0 by construction"


def split_probabilities(model: SentimentModel, dataset: EncodedSentences, batch_size: int) -> torch.Tensor:
    """Probability of positive for every sentence of ``dataset``, in order (N,)."""
    out = []
    for start in range(0, len(dataset), batch_size):
        ids, lengths, _ = collate_sentences([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        out.append(model.probabilities(ids, lengths))
    return torch.cat(out)


def pair_accuracy(correct: torch.Tensor) -> float:
    """Sentences 2i and 2i+1 form pair i; a pair counts if both are right."""
    return float(correct.view(-1, 2).all(1).float().mean())


def evaluate(params: dict[str, Any], paths: AppPaths) -> tuple[dict[str, Any], list[Path]]:
    import pandas as pd

    cfg = params["evaluate"]
    models = load(paths.model_dir, list(params["models"]))
    test = EncodedSentences(paths.prepared / "test.pt")
    contrast = EncodedSentences(paths.prepared / "contrast.pt")
    table = pd.read_csv(paths.prepared / "contrast.csv")
    metrics: dict[str, Any] = {}
    rows = []
    for name, model in models.items():
        test_right = (split_probabilities(model, test, cfg["batch_size"]) > 0.5).long() == test.labels
        p_contrast = split_probabilities(model, contrast, cfg["batch_size"])
        contrast_right = (p_contrast > 0.5).long() == contrast.labels
        scores = {"test_accuracy": float(test_right.float().mean()),
                  "contrast_accuracy": float(contrast_right.float().mean()),
                  "contrast_pair_accuracy": pair_accuracy(contrast_right)}
        metrics.update({f"{name}_{k}": round(v, 4) for k, v in scores.items()})
        rows.append({"model": name, **{k: round(v, 4) for k, v in scores.items()},
                     "note": BAG_OF_WORDS_NOTE if isinstance(model.network, BagOfWords) else ""})
        table[f"{name}_p_positive"] = p_contrast.numpy().round(3)
    primary = cfg["primary_model"]
    if primary not in models:
        raise UserError(f"sentiment.evaluate.primary_model is {primary!r}, but the trained models are "
                        f"{', '.join(models)}; set it to one of them")
    metrics = {"test_accuracy": metrics[f"{primary}_test_accuracy"], **metrics,
               "n_test": len(test), "n_contrast_pairs": len(contrast) // 2}
    paths.plots.mkdir(parents=True, exist_ok=True)
    models_csv = paths.plots / "models.csv"
    pd.DataFrame(rows).to_csv(models_csv, index=False)
    scores_csv = paths.plots / "contrast_scores.csv"
    table.to_csv(scores_csv, index=False)
    picture = draw_contrast_table(table, list(models), cfg["pairs_shown"], paths.plots / "contrast_pairs.png")
    return metrics, [models_csv, scores_csv, picture]


def draw_contrast_table(table, model_names: list[str], pairs_shown: int, path: Path) -> Path:
    """``pairs_shown`` pairs spread over the set: sentence, true label, each model's p(positive), green if right."""
    import numpy as np

    pairs = table["pair"].unique()
    chosen = pairs[np.linspace(0, len(pairs) - 1, min(pairs_shown, len(pairs))).round().astype(int)]  # every template
    shown = list(table[table["pair"].isin(chosen)].itertuples())
    cells = [[row.sentence, "pos" if row.label else "neg", *[f"{getattr(row, f'{m}_p_positive'):.2f}" for m in model_names]]
             for row in shown]
    colours = [[PLAIN, PLAIN, *[RIGHT if (getattr(row, f"{m}_p_positive") > 0.5) == bool(row.label) else WRONG
                                for m in model_names]] for row in shown]
    return save_table_picture(cells, colours, ["sentence", "truth", *[f"{m} p(pos)" for m in model_names]],
                              [0.62, 0.07, *[0.31 / len(model_names)] * len(model_names)],
                              "Contrast pairs: same words, opposite sentiment (green = right)", path)
