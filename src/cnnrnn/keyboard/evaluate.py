"""Evaluate the keyboard on held-out works: the word LSTM against the n-gram, the context curve, the char model.

Metrics (``metrics/keyboard.json``):
* word model: ``test_perplexity``, ``top1_accuracy``, ``top3_accuracy``, ``keystroke_savings``;
* n-gram baseline on the same positions: ``ngram_test_perplexity``, ``ngram_top1_accuracy``, ...;
  ``perplexity_ratio`` = LSTM / n-gram;
* ``context_curve_k<k>``: test loss (nats per word) when the LSTM sees only the last k words,
  and ``context_curve_full`` with the state carried through the text (the test text is read as
  ``rows`` contiguous rows, so thousands of words of context) — the measured answer to "a fixed window
  can't model long-term dependencies";
* char model: ``char_val_loss`` and ``char_test_loss`` in nats per character.
Pictures: the context curve, suggestion examples, and a generated sample.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnrnn.keyboard.ngram import KneserNeyModel
from cnnrnn.keyboard.predict import KeyboardModel, load
from cnnrnn.keyboard.suggestions import SuggestionScorer
from cnnrnn.paths import AppPaths
from cnnrnn.table_picture import PLAIN, RIGHT, save_table_picture


@torch.no_grad()
def stream_outputs(model: KeyboardModel, stream: torch.Tensor, rows: int, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the model over ``stream`` laid out as ``rows`` contiguous rows, carrying the state.

    Returns outputs (rows, L, H) and the index in ``stream`` of each output's target (rows, L).
    """
    length = (len(stream) - 1) // rows
    inputs = stream[: rows * length].view(rows, length)
    target_index = (torch.arange(rows * length) + 1).view(rows, length)
    outputs, state = [], None
    for start in range(0, length, window):
        out, state = model.network(inputs[:, start:start + window], state)
        outputs.append(out)
    return torch.cat(outputs, 1), target_index


@torch.no_grad()
def mean_loss(model: KeyboardModel, stream: torch.Tensor, rows: int, window: int) -> float:
    """Mean loss per token over ``stream`` read as ``rows`` contiguous rows (window by window, state carried)."""
    length = (len(stream) - 1) // rows
    inputs = stream[: rows * length].view(rows, length)
    targets = stream[1: rows * length + 1].view(rows, length)
    total, state = 0.0, None
    for start in range(0, length, window):
        outputs, state = model.network(inputs[:, start:start + window], state)
        total += float(model.network.token_losses(outputs, targets[:, start:start + window]).sum())
    return total / (rows * length)


@torch.no_grad()
def context_curve(model: KeyboardModel, stream: torch.Tensor, positions: torch.Tensor, lengths: list[int],
                  batch: int = 500) -> dict[int, float]:
    """Mean loss of predicting stream[t] at ``positions`` from only the k tokens before it (empty state), per k."""
    curve = {}
    for k in lengths:
        losses = []
        for chunk in positions.split(batch):
            context = torch.stack([stream[t - k:t] for t in chunk.tolist()])  # (P, k)
            outputs, _ = model.network(context)
            losses.append(model.network.token_losses(outputs[:, -1:], stream[chunk][:, None]).squeeze(1))
        curve[k] = float(torch.cat(losses).mean())
    return curve


@torch.no_grad()
def evaluate(params: dict[str, Any], paths: AppPaths) -> tuple[dict[str, Any], list[Path]]:
    import pandas as pd

    cfg, baseline_cfg = params["evaluate"], params["baseline"]
    models = load(paths.model_dir, list(params["models"]))
    words = torch.load(paths.prepared / "words.pt")
    written = (paths.prepared / "test_words.txt").read_text().split()
    vocabulary = json.loads((paths.prepared / "vocab.json").read_text())
    limit = cfg["max_test_tokens"]  # null: the whole test split; a number: its first tokens (smoke tests)
    test = words["test"][:limit]
    metrics: dict[str, Any] = {}
    files: list[Path] = []
    paths.plots.mkdir(parents=True, exist_ok=True)
    word = next((m for m in models.values() if m.unit == "word"), None)
    ngram = KneserNeyModel(baseline_cfg["order"], baseline_cfg["discount"], len(vocabulary)).fit(words["train"].tolist())
    if word is not None:
        outputs, target_index = stream_outputs(word, test, cfg["rows"], cfg["window"])
        flat_outputs = outputs.reshape(-1, outputs.shape[-1])
        flat_targets = target_index.reshape(-1)
        lstm, baseline = SuggestionScorer(vocabulary, cfg["suggestions"]), SuggestionScorer(vocabulary, cfg["suggestions"])
        nll_lstm, nll_ngram = torch.zeros(len(flat_targets)), torch.zeros(len(flat_targets))
        stream = test.numpy()
        for start in range(0, len(flat_targets), cfg["chunk"]):
            rows = slice(start, start + cfg["chunk"])
            index = flat_targets[rows]
            targets = test[index]
            said = [written[i] for i in index.tolist()]
            logp = word.network.log_probs(flat_outputs[rows])
            nll_lstm[rows] = -logp.gather(1, targets[:, None]).squeeze(1)
            lstm.add(logp.exp(), targets, said)
            p_ngram = torch.from_numpy(ngram.distributions(stream, index.numpy())).float()
            nll_ngram[rows] = -p_ngram.gather(1, targets[:, None]).squeeze(1).log()
            baseline.add(p_ngram, targets, said)
        metrics["test_perplexity"] = round(math.exp(float(nll_lstm.mean())), 2)
        metrics.update(lstm.metrics())
        metrics["ngram_test_perplexity"] = round(math.exp(float(nll_ngram.mean())), 2)
        metrics.update(baseline.metrics("ngram_"))
        metrics["perplexity_ratio"] = round(metrics["test_perplexity"] / metrics["ngram_test_perplexity"], 4)
        # Context curve on positions with at least max(k) words before them, chosen by seed.
        longest = max(cfg["context_lengths"])
        generator = torch.Generator().manual_seed(params["seed"])
        eligible = flat_targets[flat_targets >= longest]
        chosen = eligible[torch.randperm(len(eligible), generator=generator)[: cfg["context_positions"]]].sort().values
        curve = context_curve(word, test, chosen, cfg["context_lengths"])
        full = float(nll_lstm[torch.isin(flat_targets, chosen)].mean())
        table = pd.DataFrame([{"context_words": k, "test_loss": round(v, 4), "perplexity": round(math.exp(v), 2)}
                              for k, v in curve.items()])
        for k, v in curve.items():
            metrics[f"context_curve_k{k}"] = round(v, 4)
        metrics["context_curve_full"] = round(full, 4)
        if 5 in curve:
            metrics["context_gain_after_k5"] = round(curve[5] - curve[longest], 4)
        curve_csv = paths.plots / "context_curve.csv"
        table.to_csv(curve_csv, index=False)
        ngram_loss = math.log(metrics["ngram_test_perplexity"])
        files += [curve_csv, draw_context_curve(table, full, ngram_loss, paths.plots / "context_curve.png")]
        files += write_examples(word, ngram, test, written, vocabulary, cfg, params["seed"], paths.plots)
        metrics["n_test_words"] = len(test)
    char = next((m for m in models.values() if m.unit == "char"), None)
    if char is not None:
        chars = torch.load(paths.prepared / "chars.pt")
        metrics["char_val_loss"] = round(mean_loss(char, chars["val"][:limit], cfg["rows"], 4 * cfg["window"]), 4)
        metrics["char_test_loss"] = round(mean_loss(char, chars["test"][:limit], cfg["rows"], 4 * cfg["window"]), 4)
        sample = paths.plots / "generated.txt"
        sample.write_text(char.generate(cfg["generate_prompt"], cfg["generate_length"], cfg["generate_temperature"],
                                        params["seed"]) + "\n")
        files.append(sample)
    return metrics, files


def draw_context_curve(table, full_loss: float, ngram_loss: float, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(table["context_words"], table["test_loss"], marker="o", label="LSTM seeing only the last k words")
    ax.axhline(full_loss, color="grey", linestyle="--", label="LSTM reading on (state carried)")
    ax.axhline(ngram_loss, color="tab:orange", linestyle=":", label="Kneser-Ney trigram (all test positions)")
    ax.set_xscale("log")
    ax.set_xlabel("words of context k")
    ax.set_ylabel("test loss (nats per word)")
    ax.set_title("Does more context help? (held-out works)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_examples(word: KeyboardModel, ngram: KneserNeyModel, test: torch.Tensor, written: list[str],
                   vocabulary: list[str], cfg: dict, seed: int, plots: Path) -> list[Path]:
    """A few test contexts with the LSTM's and the n-gram's word suggestions next to the word that came:
    ``suggestions.csv`` and the same as a picture, ``suggestions.png``."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = []
    is_word = np.array([t[:1].isalnum() for t in vocabulary])
    positions = [t for t in range(12, len(test)) if written[t][:1].isalnum()]  # the next token is a word
    for t in sorted(rng.choice(positions, size=cfg["examples"], replace=False).tolist()):
        context = " ".join(written[t - 12:t])
        lstm = [w for w, _ in word.suggest(context, cfg["suggestions"])]
        p = ngram.distribution(test[max(0, t - ngram.order + 1):t].tolist())
        p[:2] = -1
        p[~is_word] = -1  # a keyboard offers words
        rows.append({"context": "... " + context, "next_word": written[t], "lstm": " | ".join(lstm),
                     "ngram": " | ".join(vocabulary[i] for i in np.argsort(-p)[: cfg["suggestions"]])})
    path = plots / "suggestions.csv"
    frame = pd.DataFrame(rows)
    frame.to_csv(path, index=False)
    return [path, draw_examples(frame, plots / "suggestions.png")]


def draw_examples(frame, path: Path) -> Path:
    """The suggestion examples as a table picture; a suggestion list holding the word that came is green."""
    rows = list(frame.itertuples())
    cells = [[row.context[-70:], row.next_word, row.lstm, row.ngram] for row in rows]
    colours = [[PLAIN, PLAIN, *[RIGHT if row.next_word in offered.split(" | ") else PLAIN for offered in (row.lstm, row.ngram)]]
               for row in rows]
    return save_table_picture(cells, colours, ["typed so far", "next word", "LSTM offers", "trigram offers"],
                              [0.5, 0.1, 0.2, 0.2],
                              "Next-word suggestions on held-out works (green: the word that came is offered)", path,
                              width_inches=12.0)
