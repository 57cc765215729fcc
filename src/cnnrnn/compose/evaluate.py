"""Evaluate the LSTM and its two baselines on held-out pieces, and the pieces the LSTM composes.

- ``validate`` (validation pieces; chooses defaults): ``val_nll_per_frame``, ``val_frame_accuracy`` and the
  baselines' twins (``independent_val_*``, ``repeat_val_*``); the repeat baseline's weight is chosen here on
  validation NLL.
- ``evaluate`` (test pieces; reports only): ``test_nll_per_frame``, ``frame_accuracy`` and the baselines'
  figures, with 95% intervals over test pieces, and the paired per-piece differences
  (``lstm_vs_<baseline>_nll_per_frame_difference``: below 0 where the LSTM is better), and all of these again on
  the farther half of the test pieces (``far_*``: melodies least like any training piece's, ``nearest.csv``); then
  ``generate.pieces`` new pieces of ``generate.bars`` bars: ``valid_midi_fraction``, ``in_key_ratio``,
  ``pitch_class_distance``, ``polyphony``, ``repetition_rate`` (with the test pieces' own figures beside).

Files: the pieces as MIDI and WAV in ``data/compose/generated/`` (a DVC output, logged to MLflow) and
``plots/compose/``: ``generated.png`` (their piano rolls), ``generated.csv`` (per piece), ``pieces.csv``
(per test piece NLL of every predictor).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from cnnrnn.compose.measures import (independent_probabilities, in_key_ratio, piece_scores, pitch_class_distance,
                                     pitch_class_histogram, pitch_frequencies, polyphony, previous_frames,
                                     repeat_probabilities, repetition_rate, span_set, totals)
from cnnrnn.compose.midi_files import valid_midi
from cnnrnn.compose.predict import LoadedComposer, load, wav_bytes
from cnnrnn.intervals import percentile_interval, resample_indices
from cnnrnn.near_copies import far_items, read_nearest
from cnnrnn.paths import AppPaths

PREDICTORS = ("lstm", "independent", "repeat")


def rolls(paths: AppPaths, split: str) -> tuple[list[str], list[np.ndarray]]:
    saved = torch.load(paths.prepared / f"{split}.pt")
    return saved["names"], [r.numpy() for r in saved["rolls"]]


def baseline_scores(pieces: list[np.ndarray], frequencies: np.ndarray,
                    repeat_weight: float) -> dict[str, list[dict[str, float]]]:
    """Per piece scores of the two baselines; ``repeat`` predicts (for its frame accuracy) the previous frame."""
    return {"independent": [piece_scores(r, independent_probabilities(r, frequencies)) for r in pieces],
            "repeat": [piece_scores(r, repeat_probabilities(r, frequencies, repeat_weight), previous_frames(r))
                       for r in pieces]}


def split_scores(model: LoadedComposer, pieces: list[np.ndarray], frequencies: np.ndarray,
                 repeat_weight: float) -> dict[str, list[dict[str, float]]]:
    """Per piece scores of every predictor."""
    return {"lstm": [model.scores(r) for r in pieces], **baseline_scores(pieces, frequencies, repeat_weight)}


def choose_repeat_weight(params: dict[str, Any], paths: AppPaths, frequencies: np.ndarray) -> float:
    _, val = rolls(paths, "val")
    trials = {w: totals([piece_scores(r, repeat_probabilities(r, frequencies, w)) for r in val])["nll_per_frame"]
              for w in params["baseline"]["repeat_weights"]}
    return min(trials, key=trials.get)


def named(predictor: str, metric: str, val: bool) -> str:
    """``lstm``: ``val_nll_per_frame`` / ``test_nll_per_frame`` and ``frame_accuracy``; baselines prefixed."""
    if predictor == "lstm":
        if metric == "nll_per_frame":
            return f"{'val' if val else 'test'}_nll_per_frame"
        return f"val_{metric}" if val else metric
    return f"{predictor}_{'val_' if val else ''}{metric if metric != 'nll_per_frame' or val else 'test_nll_per_frame'}"


def validate(params: dict[str, Any], paths: AppPaths) -> dict[str, Any]:
    model = load(paths.model_dir)
    _, train = rolls(paths, "train")
    frequencies = pitch_frequencies(train)
    weight = choose_repeat_weight(params, paths, frequencies)
    _, val = rolls(paths, "val")
    scores = split_scores(model, val, frequencies, weight)
    metrics = {named(p, m, True): round(v, 4) for p in PREDICTORS for m, v in totals(scores[p]).items()}
    return {**metrics, "repeat_weight": weight, "n_val_pieces": len(val)}


def generated_pieces(params: dict[str, Any], paths: AppPaths, model: LoadedComposer, train: list[np.ndarray],
                     test: list[np.ndarray], out: Path) -> tuple[dict[str, Any], pd.DataFrame, list[np.ndarray]]:
    cfg = params["generate"]
    span = 2 * cfg["beats_per_bar"] * model.steps_per_quarter
    training_spans = span_set(train, span)
    test_histogram = pitch_class_histogram(test, model.pitch_low)
    out.mkdir(parents=True, exist_ok=True)
    rows, pieces = [], []
    for i in range(cfg["pieces"]):
        seed = params["seed"] + i
        roll = model.compose(seed, cfg["bars"], cfg["temperature"])
        midi = model.midi(roll)
        (out / f"piece-{i + 1}.mid").write_bytes(midi)
        (out / f"piece-{i + 1}.wav").write_bytes(wav_bytes(midi))
        ratio, key = in_key_ratio(midi)
        rows.append({"piece": i + 1, "seed": seed, "valid_midi": int(valid_midi(midi)), "key": key,
                     "in_key_ratio": round(ratio, 4),
                     "pitch_class_distance": round(pitch_class_distance(pitch_class_histogram([roll], model.pitch_low),
                                                                         test_histogram), 4),
                     "polyphony": round(polyphony(roll), 3),
                     "repetition_rate": round(repetition_rate(roll, training_spans, span), 4)})
        pieces.append(roll)
        print(f"compose: piece {i + 1}/{cfg['pieces']}: {key}, in key {ratio:.2f}", file=sys.stderr, flush=True)
    table = pd.DataFrame(rows)
    metrics = {"valid_midi_fraction": round(float(table["valid_midi"].mean()), 4),
               **{k: round(float(table[k].mean()), 4) for k in ("in_key_ratio", "pitch_class_distance", "polyphony",
                                                                "repetition_rate")},
               "test_pieces_polyphony": round(float(np.mean([polyphony(r) for r in test])), 3),
               "test_pieces_repetition_rate": round(float(np.mean([repetition_rate(r, training_spans, span)
                                                                   for r in test])), 4),
               "n_generated": len(rows), "generated_bars": cfg["bars"]}
    return metrics, table, pieces


def draw_rolls(pieces: list[np.ndarray], table: pd.DataFrame, pitch_low: int, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(pieces), 1, figsize=(12, 1.6 * len(pieces)), squeeze=False)
    for ax, roll, (_, row) in zip(axes[:, 0], pieces, table.iterrows()):
        used = np.flatnonzero(roll.any(axis=0))
        low, high = (used.min(), used.max()) if len(used) else (0, roll.shape[1] - 1)
        ax.imshow(roll[:, low:high + 1].T, origin="lower", aspect="auto", cmap="Greys", interpolation="nearest",
                  extent=(0, len(roll), pitch_low + low - 0.5, pitch_low + high + 0.5))
        ax.set_ylabel("pitch", fontsize=7)
        ax.set_title(f"piece {row['piece']} (seed {row['seed']}): {row['key']}, in key {row['in_key_ratio']:.2f}, "
                     f"copied 2-bar spans {row['repetition_rate']:.2f}", fontsize=8)
    axes[-1, 0].set_xlabel("frame (quarter notes)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def test_figures(scores: dict[str, list[dict[str, float]]], pieces, resamples: int, seed: int) -> dict[str, float]:
    """Every predictor's NLL and frame accuracy over ``pieces`` (indices into ``scores``) with 95% intervals
    (resampling those pieces), and the paired LSTM-minus-baseline NLL differences (below 0: the LSTM is better)."""
    pieces = np.asarray(list(pieces), dtype=np.int64)
    subset = {p: [scores[p][i] for i in pieces] for p in PREDICTORS}
    draws = resample_indices(len(pieces), resamples, seed)
    metrics: dict[str, float] = {}
    resampled = {}
    for predictor in PREDICTORS:
        for metric, value in totals(subset[predictor]).items():
            samples = np.array([totals(subset[predictor], d)[metric] for d in draws])
            resampled[(predictor, metric)] = samples
            key = named(predictor, metric, False)
            low, high = percentile_interval(samples)
            metrics.update({key: round(value, 4), f"{key}_ci95_low": round(low, 4), f"{key}_ci95_high": round(high, 4)})
    for baseline in ("independent", "repeat"):
        difference = resampled[("lstm", "nll_per_frame")] - resampled[(baseline, "nll_per_frame")]
        low, high = percentile_interval(difference)
        key = f"lstm_vs_{baseline}_nll_per_frame_difference"
        observed = totals(subset["lstm"])["nll_per_frame"] - totals(subset[baseline])["nll_per_frame"]
        metrics.update({key: round(observed, 4), f"{key}_ci95_low": round(low, 4), f"{key}_ci95_high": round(high, 4)})
    return metrics


def evaluate(params: dict[str, Any], paths: AppPaths) -> tuple[dict[str, Any], list[Path]]:
    cfg = params["evaluate"]
    model = load(paths.model_dir)
    _, train = rolls(paths, "train")
    names, test = rolls(paths, "test")
    frequencies = pitch_frequencies(train)
    weight = choose_repeat_weight(params, paths, frequencies)
    scores = split_scores(model, test, frequencies, weight)
    metrics = test_figures(scores, range(len(test)), cfg["bootstrap_resamples"], params["seed"])
    # The same figures on the farther half of the test pieces (melodies least like any training piece's):
    # generalization apart from whatever near-copies remain under the threshold.
    similarity = read_nearest(paths.prepared / "nearest.csv")
    far = far_items(similarity)
    far_index = [i for i, n in enumerate(names) if n in far]
    metrics.update({f"far_{k}": v for k, v in test_figures(scores, far_index, cfg["bootstrap_resamples"],
                                                           params["seed"]).items()})
    metrics.update({"n_far_test_pieces": len(far_index),
                    "far_max_melody_similarity": round(max((similarity[n] for n in far), default=0.0), 4),
                    "test_max_melody_similarity": round(max(similarity.values(), default=0.0), 4)})
    metrics.update({"repeat_weight": weight, "n_test_pieces": len(test), "n_test_frames": int(sum(map(len, test)))})

    paths.plots.mkdir(parents=True, exist_ok=True)
    per_piece = pd.DataFrame({"piece": names, "frames": [int(s["frames"]) for s in scores["lstm"]],
                              "nearest_training_melody_similarity": [similarity.get(n) for n in names],
                              **{f"{p}_nll_per_frame": [round(s["nll"] / s["frames"], 4) for s in scores[p]]
                                 for p in PREDICTORS}})
    per_piece.to_csv(paths.plots / "pieces.csv", index=False)
    generated, table, pieces = generated_pieces(params, paths, model, train, test,
                                                paths.output("data/compose/generated"))
    metrics.update(generated)
    table.to_csv(paths.plots / "generated.csv", index=False)
    files = [paths.plots / "pieces.csv", paths.plots / "generated.csv",
             draw_rolls(pieces, table, model.pitch_low, paths.plots / "generated.png")]
    files += sorted((paths.output("data/compose/generated")).glob("piece-*"))
    return metrics, files
