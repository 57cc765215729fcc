"""Score your own sentences with every trained sentiment model (torch only: no Lightning, no MLflow)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from cnnrnn.model_file import read_model_file, rebuild
from cnnrnn.sentiment.sentences import collate_sentences
from cnnrnn.sentiment.network import build_network
from cnnrnn.text_models import model_files, text_inputs
from cnnrnn.text import Vocabulary, require_text, tokenize_words


class SentimentModel:
    """One trained network with its vocabulary."""

    def __init__(self, path: Path):
        saved = read_model_file(path, "sentiment", "dvc repro sentiment_train")
        self.name: str = saved["model_name"]
        self.vocabulary = Vocabulary(saved["vocabulary"])
        self.network = rebuild(path, saved, lambda s: build_network(s["model_cfg"], len(self.vocabulary)),
                               "dvc repro sentiment_train")

    @torch.no_grad()
    def probabilities(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Padded ids (B, T), lengths (B,) -> probability of positive (B,)."""
        return torch.sigmoid(self.network(ids, lengths))

    def encode(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        items = [(torch.tensor(self.vocabulary.encode(tokenize_words(t)) or [1]), torch.tensor(0)) for t in texts]
        ids, lengths, _ = collate_sentences(items)
        return ids, lengths

    def score(self, texts: list[str]) -> list[float]:
        return self.probabilities(*self.encode(texts)).tolist()


def load(model_dir: Path, names: list[str] | None = None) -> dict[str, SentimentModel]:
    """``models/sentiment``: each ``<name>/model.pt`` under it (every one, or those of ``names``), or one model directory."""
    return {m.name: m for m in (SentimentModel(f) for f in model_files(model_dir, "sentiment", names))}


def predict_texts(models: dict[str, SentimentModel], texts: list[str], threshold: float = 0.5) -> list[dict[str, Any]]:
    """[{"text", "<model>_probability", "<model>_label"} ...] for each text."""
    texts = [require_text(t, "a sentence") for t in texts]
    rows = [{"text": t} for t in texts]
    for name, model in models.items():
        for row, p in zip(rows, model.score(texts)):
            row[f"{name}_probability"] = round(p, 4)
            row[f"{name}_label"] = "positive" if p > threshold else "negative"
    return rows


def predict_frame(models: dict[str, SentimentModel], frame):
    """MLflow pyfunc: a DataFrame whose first column holds sentences -> one row of scores per sentence."""
    import pandas as pd

    return pd.DataFrame(predict_texts(models, text_inputs(frame)))


def describe(models: dict[str, SentimentModel], text: str, top=None, as_json: bool = False, output=None) -> str:
    """``cnnrnn predict sentiment TEXT``: label and probability of positive for each model."""
    row = predict_texts(models, [text])[0]
    if as_json:
        return json.dumps(row)
    lines = [repr(text)]
    lines += [f"  {name:>7}: {row[f'{name}_label']:<8} p(positive) = {row[f'{name}_probability']:.3f}" for name in models]
    return "\n".join(lines)
