"""Evaluate the keyboard on held-out works: the word LSTM against a tuned n-gram, the context curve, the char model.

``validate(params, paths)`` measures the validation works, ``evaluate(params, paths)`` the test works,
with the same code (:func:`score_text`, :func:`headline`):

* word model: ``test_perplexity``, ``top1_accuracy``, ``top3_accuracy``, ``keystroke_savings``
  (validation: ``val_perplexity``, ``val_top1_accuracy``, ``val_top3_accuracy``; the validation works'
  spelling of unknown words is not kept, so the word-level metrics and keystrokes are test only);
* the n-gram baseline on the same positions: ``ngram_test_perplexity``, ``ngram_top1_accuracy``, ...
  (``ngram_val_perplexity``, ``ngram_val_top3_accuracy``, ...); ``perplexity_ratio`` = LSTM / n-gram
  (``val_perplexity_ratio``). The n-gram's order and discounts are chosen on validation: every
  candidate of ``baseline`` (orders x discounts) is fitted on the training works and the one with the
  lowest validation perplexity is kept (``ngram_order``, ``ngram_discount_d1/_d2/_d3plus``, the grid in
  ``ngram_grid_<candidate>_val_perplexity`` and ``plots/keyboard/ngram_grid.csv``);
* test only: 95% block-bootstrap intervals (``<metric>_ci95_low``/``_high``; contiguous blocks of
  ``bootstrap_block`` test tokens, ``bootstrap_resamples`` resamples, seeded) and the paired comparisons
  ``word_vs_ngram_top3_accuracy_difference`` (with McNemar's p on per-token hits),
  ``word_vs_ngram_perplexity_difference`` and ``word_vs_ngram_keystroke_savings_difference``;
* ``context_curve_k<k>``: test loss (nats per word) when the LSTM sees only the last k words,
  and ``context_curve_full`` with the state carried through the text (the test text is read as
  ``rows`` contiguous rows, so thousands of words of context) — the measured answer to "a fixed window
  can't model long-term dependencies";
* char model: ``char_val_loss`` (validate) and ``char_test_loss`` in nats per character.
Pictures (evaluate only): the context curve, suggestion examples, the n-gram grid, and a generated sample.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnrnn.intervals import paired_difference, percentile_interval, resampled_means, with_interval
from cnnrnn.keyboard.ngram import MODIFIED, KneserNeyModel, tune
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


def scored_positions(length: int, rows: int) -> torch.Tensor:
    """The positions of a ``length``-token text that :func:`stream_outputs` predicts, in text order (N,)."""
    return torch.arange(rows * ((length - 1) // rows)) + 1


@dataclass
class Scores:
    """Both models on the same positions of one text, in text order: per-position negative log-likelihoods
    (N,) and the suggestion scorers (their per-position hits, keystrokes and characters)."""

    nll: np.ndarray
    ngram_nll: np.ndarray
    lstm: SuggestionScorer
    ngram: SuggestionScorer


@torch.no_grad()
def score_text(word: KeyboardModel, ngram: KneserNeyModel, stream: torch.Tensor, written: list[str] | None,
               vocabulary: list[str], cfg: dict) -> Scores:
    """Score the word LSTM and the n-gram on every position of ``stream`` (L,) that the LSTM predicts reading it as
    ``cfg['rows']`` rows; ``written``: the tokens as spelled in the text (None: next-token metrics only)."""
    outputs, target_index = stream_outputs(word, stream, cfg["rows"], cfg["window"])
    flat_outputs = outputs.reshape(-1, outputs.shape[-1])
    flat_targets = target_index.reshape(-1)  # row after row: text order
    lstm, baseline = SuggestionScorer(vocabulary, cfg["suggestions"]), SuggestionScorer(vocabulary, cfg["suggestions"])
    nll = torch.zeros(len(flat_targets))
    ids = stream.numpy()
    buffer = np.empty((min(cfg["chunk"], len(flat_targets)), len(vocabulary)))  # reused: see KneserNeyModel.distributions
    for start in range(0, len(flat_targets), cfg["chunk"]):
        rows = slice(start, start + cfg["chunk"])
        index = flat_targets[rows]
        targets = stream[index]
        said = [written[i] for i in index.tolist()] if written is not None else None
        logp = word.network.log_probs(flat_outputs[rows])
        nll[rows] = -logp.gather(1, targets[:, None]).squeeze(1)
        lstm.add(logp.exp(), targets, said)
        baseline.add(torch.from_numpy(ngram.distributions(ids, index.numpy(), out=buffer)), targets, said)
    return Scores(nll.double().numpy(), -np.log(ngram.probabilities(ids, flat_targets.numpy())), lstm, baseline)


def headline(scores: Scores, split: str) -> dict[str, float]:
    """Perplexities, suggestion metrics and the perplexity ratio of ``split`` ("test": the unprefixed bar names)."""
    prefix = "" if split == "test" else f"{split}_"
    perplexity, ngram_perplexity = math.exp(scores.nll.mean()), math.exp(scores.ngram_nll.mean())
    return {f"{split}_perplexity": round(perplexity, 2), **scores.lstm.metrics(prefix),
            f"ngram_{split}_perplexity": round(ngram_perplexity, 2), **scores.ngram.metrics(f"ngram_{prefix}"),
            f"{prefix}perplexity_ratio": round(perplexity / ngram_perplexity, 4)}


def bootstrap(scores: Scores, shown: int, resamples: int, seed: int, block: int) -> dict[str, float]:
    """95% intervals of the headline metrics and the paired LSTM-vs-n-gram differences, from the same
    resamples of contiguous ``block``-token stretches of the text (see :mod:`cnnrnn.intervals`)."""
    lstm, ngram = scores.lstm.per_position(), scores.ngram.per_position()
    columns = {"nll": scores.nll, "ngram_nll": scores.ngram_nll, "characters": lstm["characters"],
               **{f"{prefix}{key}": values for prefix, table in (("", lstm), ("ngram_", ngram))
                  for key, values in table.items() if key != "characters"}}
    means = resampled_means(columns, resamples, seed, block)

    def savings(prefix: str) -> np.ndarray:  # a ratio of sums: 1 - keystrokes / characters on the same blocks
        return 1 - means[f"{prefix}keystrokes"] / np.maximum(means["characters"], 1e-12)

    resampled = {  # metric -> (its value on every resample, digits)
        "test_perplexity": (np.exp(means["nll"]), 2), "ngram_test_perplexity": (np.exp(means["ngram_nll"]), 2),
        "perplexity_ratio": (np.exp(means["nll"] - means["ngram_nll"]), 4)}
    for prefix in ("", "ngram_"):
        resampled[f"{prefix}top1_accuracy"] = (means[f"{prefix}token_top1"], 5)
        resampled[f"{prefix}top{shown}_accuracy"] = (means[f"{prefix}token_topk"], 5)
        if lstm["characters"].sum():
            resampled[f"{prefix}keystroke_savings"] = (savings(prefix), 5)
    out: dict[str, float] = {}
    for name, (values, digits) in resampled.items():
        low, high = percentile_interval(values)
        out.update({f"{name}_ci95_low": round(low, digits), f"{name}_ci95_high": round(high, digits)})
    out.update(paired_difference(f"word_vs_ngram_top{shown}_accuracy", lstm["token_topk"], ngram["token_topk"],
                                 resamples, seed, block, mcnemar=True, digits=5))
    out.update(paired_difference("word_vs_ngram_perplexity", scores.nll, scores.ngram_nll, resamples, seed, block,
                                 transform=np.exp, digits=2))
    if lstm["characters"].sum():
        characters = max(int(lstm["characters"].sum()), 1)
        difference = (int(ngram["keystrokes"].sum()) - int(lstm["keystrokes"].sum())) / characters
        out.update(with_interval("word_vs_ngram_keystroke_savings_difference", difference,
                                 *percentile_interval(savings("") - savings("ngram_")), 5))
    return out


def candidate_name(order: int, discount: float | str) -> str:
    """``order4_modified``, ``order3_d075``: a grid candidate as a metric-name part (no dots)."""
    return f"order{order}_" + (MODIFIED if discount == MODIFIED else f"d{round(float(discount) * 100):03d}")


@functools.lru_cache(maxsize=2)
def _tuned_ngram(words_file: str, stamp: tuple[int, int], baseline_json: str, val_limit: int | None,
                 rows: int) -> tuple[KneserNeyModel, tuple[dict, ...]]:
    words, baseline = torch.load(words_file), json.loads(baseline_json)
    val = words["val"][:val_limit]
    vocabulary_size = len(json.loads((Path(words_file).parent / "vocab.json").read_text()))
    model, grid = tune(words["train"].numpy(), val.numpy(), scored_positions(len(val), rows).numpy(), vocabulary_size,
                       list(baseline["orders"]), list(baseline["discounts"]))
    return model, tuple(grid)


def tuned_ngram(params: dict[str, Any], paths: AppPaths) -> tuple[KneserNeyModel, list[dict]]:
    """The n-gram of ``baseline``'s grid with the lowest perplexity on the validation positions that
    :func:`validate` scores, and the grid (one row per candidate). Counted once per process for the same
    prepared words (validate and evaluate, or every point of a sweep, share it)."""
    words_file = (paths.prepared / "words.pt").resolve()
    stat = words_file.stat()
    baseline = {k: params["baseline"][k] for k in ("orders", "discounts")}
    model, grid = _tuned_ngram(str(words_file), (stat.st_mtime_ns, stat.st_size), json.dumps(baseline),
                               params["evaluate"]["max_val_tokens"], params["evaluate"]["rows"])
    return model, [dict(row) for row in grid]


def ngram_choice(model: KneserNeyModel, grid: list[dict]) -> dict[str, float]:
    """The chosen order and its highest order's discounts, and every candidate's validation perplexity."""
    d1, d2, d3 = model.discounts[-1]
    return {"ngram_order": model.order, "ngram_discounts_modified": int(model.discount == MODIFIED),
            "ngram_discount_d1": round(d1, 4), "ngram_discount_d2": round(d2, 4), "ngram_discount_d3plus": round(d3, 4),
            **{f"ngram_grid_{candidate_name(r['order'], r['discount'])}_val_perplexity": r["val_perplexity"] for r in grid}}


@torch.no_grad()
def validate(params: dict[str, Any], paths: AppPaths) -> dict[str, Any]:
    """The validation twins of the bar metrics (see the module doc), by the code that measures the test works.

    Reads only ``paths.model_dir`` and ``paths.prepared`` (so a sweep's scratch root works) and writes nothing.
    All of the validation works by default (``evaluate.max_val_tokens``: null); about 20 s on 2 cores.
    """
    cfg = params["evaluate"]
    models = load(paths.model_dir, list(params["models"]))
    limit = cfg["max_val_tokens"]
    metrics: dict[str, Any] = {}
    word = next((m for m in models.values() if m.unit == "word"), None)
    if word is not None:
        vocabulary = json.loads((paths.prepared / "vocab.json").read_text())
        val = torch.load(paths.prepared / "words.pt")["val"][:limit]
        ngram, _ = tuned_ngram(params, paths)
        metrics.update(headline(score_text(word, ngram, val, None, vocabulary, cfg), "val"))
        metrics["n_val_words"] = len(val)
    char = next((m for m in models.values() if m.unit == "char"), None)
    if char is not None:
        chars = torch.load(paths.prepared / "chars.pt")
        metrics["char_val_loss"] = round(mean_loss(char, chars["val"][:limit], cfg["rows"], 4 * cfg["window"]), 4)
    return metrics


@torch.no_grad()
def evaluate(params: dict[str, Any], paths: AppPaths) -> tuple[dict[str, Any], list[Path]]:
    import pandas as pd

    cfg = params["evaluate"]
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
    if word is not None:
        ngram, grid = tuned_ngram(params, paths)
        metrics.update(ngram_choice(ngram, grid))
        grid_csv = paths.plots / "ngram_grid.csv"
        pd.DataFrame(grid).to_csv(grid_csv, index=False)
        files.append(grid_csv)
        scores = score_text(word, ngram, test, written, vocabulary, cfg)
        metrics.update(headline(scores, "test"))
        metrics.update(bootstrap(scores, cfg["suggestions"], cfg["bootstrap_resamples"], params["seed"],
                                 cfg["bootstrap_block"]))
        # Context curve on positions with at least max(k) words before them, chosen by seed.
        flat_targets = scored_positions(len(test), cfg["rows"])
        longest = max(cfg["context_lengths"])
        generator = torch.Generator().manual_seed(params["seed"])
        eligible = flat_targets[flat_targets >= longest]
        chosen = eligible[torch.randperm(len(eligible), generator=generator)[: cfg["context_positions"]]].sort().values
        curve = context_curve(word, test, chosen, cfg["context_lengths"])
        full = float(scores.nll[torch.isin(flat_targets, chosen).numpy()].mean())
        table = pd.DataFrame([{"context_words": k, "test_loss": round(v, 4), "perplexity": round(math.exp(v), 2)}
                              for k, v in curve.items()])
        for k, v in curve.items():
            metrics[f"context_curve_k{k}"] = round(v, 4)
        metrics["context_curve_full"] = round(full, 4)
        if 5 in curve:
            metrics["context_gain_after_k5"] = round(curve[5] - curve[longest], 4)
        curve_csv = paths.plots / "context_curve.csv"
        table.to_csv(curve_csv, index=False)
        ngram_loss = float(scores.ngram_nll.mean())
        files += [curve_csv, draw_context_curve(table, full, ngram_loss, ngram.order, paths.plots / "context_curve.png")]
        files += write_examples(word, ngram, test, written, vocabulary, cfg, params["seed"], paths.plots)
        metrics["n_test_words"] = len(test)
    char = next((m for m in models.values() if m.unit == "char"), None)
    if char is not None:
        chars = torch.load(paths.prepared / "chars.pt")
        metrics["char_test_loss"] = round(mean_loss(char, chars["test"][:limit], cfg["rows"], 4 * cfg["window"]), 4)
        sample = paths.plots / "generated.txt"
        sample.write_text(char.generate(cfg["generate_prompt"], cfg["generate_length"], cfg["generate_temperature"],
                                        params["seed"]) + "\n")
        files.append(sample)
    return metrics, files


def draw_context_curve(table, full_loss: float, ngram_loss: float, ngram_order: int, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(table["context_words"], table["test_loss"], marker="o", label="LSTM seeing only the last k words")
    ax.axhline(full_loss, color="grey", linestyle="--", label="LSTM reading on (state carried)")
    ax.axhline(ngram_loss, color="tab:orange", linestyle=":", label=f"Kneser-Ney, order {ngram_order} (all test positions)")
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
    return save_table_picture(cells, colours, ["typed so far", "next word", "LSTM offers", "n-gram offers"],
                              [0.5, 0.1, 0.2, 0.2],
                              "Next-word suggestions on held-out works (green: the word that came is offered)", path,
                              width_inches=12.0)
