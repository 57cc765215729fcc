"""What compose measures: the probability of held-out music, and what generated pieces look like.

Likelihood (per piece, so intervals resample whole pieces): :func:`piece_scores` gives each piece's summed
Bernoulli NLL (nats, summed over pitches, per frame) and Bay et al.'s frame-accuracy counts, for any
predictor of per-frame pitch probabilities. The baselines are such predictors:

- ``independent``: each pitch on with its training frequency (Laplace-smoothed), whatever came before;
- ``repeat``: the previous frame again, mixed with the independent frequencies so no probability is 0 or 1
  (``p = a * previous + (1 - a) * frequency``; ``a`` chosen on validation NLL). Its frame accuracy is that of
  its prediction, the previous frame copied (thresholding the mix would depend on ``a``: below 0.5, nothing).

Generated pieces: :func:`in_key_ratio` (music21's key), :func:`pitch_class_histogram`,
:func:`polyphony`, :func:`repetition_rate` (2-bar spans copied verbatim from training). No Lightning, no MLflow.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-7


def pitch_frequencies(rolls: list[np.ndarray]) -> np.ndarray:
    """(P,) the share of training frames in which each pitch sounds, Laplace-smoothed."""
    on = np.sum([r.sum(axis=0) for r in rolls], axis=0).astype(np.float64)
    frames = sum(len(r) for r in rolls)
    return (on + 1) / (frames + 2)


def independent_probabilities(roll: np.ndarray, frequencies: np.ndarray) -> np.ndarray:
    return np.broadcast_to(frequencies, roll.shape)


def previous_frames(roll: np.ndarray) -> np.ndarray:
    """(T, P): frame t-1 at row t (an empty frame first): what copying the previous frame predicts."""
    return np.vstack([np.zeros((1, roll.shape[1]), dtype=roll.dtype), roll[:-1]])


def repeat_probabilities(roll: np.ndarray, frequencies: np.ndarray, weight: float) -> np.ndarray:
    """Frame t's probabilities from frame t-1 (the first from an empty frame)."""
    return weight * previous_frames(roll) + (1 - weight) * frequencies


def piece_scores(roll: np.ndarray, probabilities: np.ndarray, predicted: np.ndarray | None = None) -> dict[str, float]:
    """One piece: ``nll`` (summed over frames and pitches), ``frames``, and the frame-accuracy counts ``tp``,
    ``fp``, ``fn`` of the ``predicted`` frames (default: a pitch on where its probability is above 0.5).
    ``probabilities``: of each pitch given whatever the predictor conditions on (for a NADE output, the true
    pitches below it), so the summed NLL is exact; such a predictor passes its own ``predicted`` frames."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), EPS, 1 - EPS)
    y = np.asarray(roll, dtype=np.float64)
    nll = -(y * np.log(p) + (1 - y) * np.log1p(-p)).sum()
    predicted = p > 0.5 if predicted is None else np.asarray(predicted, dtype=bool)
    on = y > 0.5
    return {"nll": float(nll), "frames": float(len(y)), "tp": float((predicted & on).sum()),
            "fp": float((predicted & ~on).sum()), "fn": float((~predicted & on).sum())}


def totals(scores: list[dict[str, float]], index: np.ndarray | None = None) -> dict[str, float]:
    """``nll_per_frame`` and ``frame_accuracy`` (TP / (TP + FP + FN), Bay et al. 2009) over the pieces (or a resample)."""
    chosen = scores if index is None else [scores[i] for i in index]
    s = {k: sum(x[k] for x in chosen) for k in ("nll", "frames", "tp", "fp", "fn")}
    return {"nll_per_frame": s["nll"] / max(s["frames"], 1.0),
            "frame_accuracy": s["tp"] / max(s["tp"] + s["fp"] + s["fn"], 1.0)}


def key_pitch_classes(tonic: int, mode: str) -> set[int]:
    """The major scale; for minor, natural minor with the raised 6th and 7th (melodic and harmonic minor)."""
    steps = (0, 2, 4, 5, 7, 9, 11) if mode == "major" else (0, 2, 3, 5, 7, 8, 9, 10, 11)
    return {(tonic + s) % 12 for s in steps}


def in_key_ratio(midi_bytes: bytes) -> tuple[float, str]:
    """The share of notes whose pitch class belongs to the key music21 detects (Krumhansl-Schmuckler), and the key."""
    import tempfile
    import warnings
    from pathlib import Path

    import music21

    with tempfile.TemporaryDirectory(prefix="cnnrnn-key-") as tmp:
        path = Path(tmp) / "piece.mid"
        path.write_bytes(midi_bytes)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            score = music21.converter.parse(str(path))
            key = score.analyze("key")
    pitches = [p.pitchClass for n in score.recurse().notes for p in n.pitches]
    if not pitches:
        return 0.0, str(key)
    allowed = key_pitch_classes(key.tonic.pitchClass, key.mode)
    return sum(pc in allowed for pc in pitches) / len(pitches), f"{key.tonic.name} {key.mode}"


def pitch_class_histogram(rolls: list[np.ndarray], pitch_low: int) -> np.ndarray:
    """(12,) share of sounding frame-notes per pitch class."""
    counts = np.zeros(12)
    for roll in rolls:
        per_pitch = roll.sum(axis=0)
        for index, count in enumerate(per_pitch):
            counts[(pitch_low + index) % 12] += count
    return counts / max(counts.sum(), 1.0)


def pitch_class_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Total variation distance of two pitch-class histograms: 0 same, 1 disjoint."""
    return float(0.5 * np.abs(a - b).sum())


def polyphony(roll: np.ndarray) -> float:
    """Mean number of pitches sounding per frame."""
    return float(np.asarray(roll).sum(axis=1).mean()) if len(roll) else 0.0


def span_set(rolls: list[np.ndarray], span: int) -> set[bytes]:
    """Every window of ``span`` consecutive frames of ``rolls``, as bytes (for exact lookup)."""
    out = set()
    for roll in rolls:
        roll = np.ascontiguousarray(roll, dtype=np.uint8)
        for start in range(0, len(roll) - span + 1):
            out.add(roll[start:start + span].tobytes())
    return out


def repetition_rate(roll: np.ndarray, training_spans: set[bytes], span: int) -> float:
    """The share of the piece's ``span``-frame windows (2 bars) found verbatim in the training pieces,
    windows of silence left out."""
    roll = np.ascontiguousarray(roll, dtype=np.uint8)
    windows = [roll[s:s + span] for s in range(0, len(roll) - span + 1)]
    windows = [w for w in windows if w.any()]
    if not windows:
        return 0.0
    return sum(w.tobytes() in training_spans for w in windows) / len(windows)
