"""Evaluate the translation model against the copy and word-by-word baselines on unseen sentences.

One measurement for both splits: every system translates every distinct source sentence of the split once,
and sacreBLEU scores the outputs against all of that source's human references (:mod:`cnnrnn.translate.scoring`);
intervals resample whole groups of near-copy sources (a cluster bootstrap). Test figures are also reported on the farther half of the test sources (``far_*``:
those least like any training source, ``nearest.csv``).

- ``validate`` (validation pairs; chooses defaults): ``val_bleu``, ``val_chrf``, ``val_exact_match`` of the
  model as ``cnnrnn predict`` decodes (the trained beam width), ``greedy_val_*``, ``copy_val_*`` and
  ``word_by_word_val_*``; the word-by-word settings are chosen here, on validation chrF.
- ``evaluate`` (test pairs; reports only): the same figures without ``val_``, each with a 95% bootstrap
  interval; ``seq2seq_vs_word_by_word_{bleu,chrf,exact_match}_difference`` (and ``_vs_copy_``) with
  interval and bootstrap p-value over the same resampled sentences.

Files (``plots/translate/``): ``by_length.csv`` (each system's BLEU and chrF by source length),
``examples.csv`` (test sentences with every system's output) and ``attention.png`` (the model's
attention on test pairs whose alignment is not diagonal: reordering, "ne ... pas").
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from cnnrnn.near_copies import far_items, read_nearest
from cnnrnn.paths import AppPaths
from cnnrnn.translate.baselines import WordByWord, choose_word_by_word, copy_source
from cnnrnn.translate.predict import LoadedTranslator, load
from cnnrnn.translate.scoring import METRICS, bootstrap, exact_matches, paired_difference, score

SEQ2SEQ = "seq2seq"


def pairs(paths: AppPaths, split: str) -> tuple[list[str], list[str]]:
    saved = torch.load(paths.prepared / f"{split}.pt")
    return saved["source"], saved["target"]


def items(paths: AppPaths, split: str) -> tuple[list[str], list[list[str]]]:
    """The split's distinct sources (first-seen order) and each one's references."""
    references: dict[str, list[str]] = {}
    for source, target in zip(*pairs(paths, split)):
        references.setdefault(source, []).append(target)
    return list(references), list(references.values())


def source_groups(paths: AppPaths, split: str) -> dict[str, str]:
    """``{source: its group of near-copies}`` (``{split}.tsv``'s ``group_or_value``; a source alone if it has none)."""
    import csv

    with (paths.prepared / f"{split}.tsv").open(encoding="utf-8", newline="") as f:
        return {row["source"]: row["group_or_value"] or row["source"]
                for row in csv.DictReader(f, delimiter="\t")}


def word_by_word(params: dict[str, Any], paths: AppPaths) -> tuple[WordByWord, dict[str, Any], list[dict[str, Any]]]:
    """The lexical table of the training pairs and its settings, chosen on the validation pairs."""
    val_sources, val_references = items(paths, "val")
    return choose_word_by_word(pairs(paths, "train"), val_sources, val_references, params["baseline"],
                               lambda h, r: score("chrf", h, r))


def translate_all(model: LoadedTranslator, sources: list[str], greedy_too: bool, what: str) -> dict[str, list[dict]]:
    """The model's rows (:meth:`LoadedTranslator.translate`) as it decodes by default, and greedy if asked."""
    start = time.perf_counter()
    rows = {SEQ2SEQ: model.translate(sources)}
    if greedy_too and model.beam_width > 1:
        rows["greedy"] = model.translate(sources, beam=1)
    print(f"translate: {what}: {len(sources)} sentences in {time.perf_counter() - start:.1f} s "
          f"(beam width {model.beam_width})", file=sys.stderr, flush=True)
    return rows


def system_outputs(params: dict[str, Any], paths: AppPaths, model: LoadedTranslator, split: str
                   ) -> tuple[dict[str, list[str]], dict[str, list[dict]], list[str], list[list[str]], dict[str, Any]]:
    """Every system's output on ``split``: ({system: outputs}, the model's rows, sources, references, baseline record)."""
    sources, references = items(paths, split)
    rows = translate_all(model, sources, params["evaluate"]["greedy_too"], split)
    table, chosen, tried = word_by_word(params, paths)
    outputs = {name: [r["translation"] for r in r_] for name, r_ in rows.items()}
    outputs["copy"] = copy_source(sources)
    outputs["word_by_word"] = [table.translate(s, chosen["min_dice"], chosen["unknown"]) for s in sources]
    record = {"word_by_word_min_count": chosen["min_count"], "word_by_word_min_dice": chosen["min_dice"],
              "word_by_word_copies_unknown": int(chosen["unknown"] == "copy"),
              "word_by_word_table_size": len(table.table), "word_by_word_settings_tried": len(tried)}
    return outputs, rows, sources, references, record


def flat(name: str, figures: dict[str, float], val: bool = False) -> dict[str, float]:
    """``seq2seq`` figures keep bare names (``bleu``); the others are prefixed (``copy_bleu``); ``val_`` before the metric."""
    prefix = "" if name == SEQ2SEQ else f"{name}_"
    return {f"{prefix}{'val_' if val else ''}{k}": v for k, v in figures.items()}


def validate(params: dict[str, Any], paths: AppPaths) -> dict[str, Any]:
    model = load(paths.model_dir)
    outputs, _, _, references, record = system_outputs(params, paths, model, "val")
    metrics: dict[str, Any] = {}
    for name, hypotheses in outputs.items():
        figures = {m: round(score(m, hypotheses, references), 2) for m in METRICS}
        figures["exact_match"] = round(float(exact_matches(hypotheses, references).mean()), 4)
        metrics.update(flat(name, figures, val=True))
    return {**metrics, **record, "n_val": len(references), "n_val_pairs": sum(map(len, references))}


def length_breakdown(outputs: dict[str, list[str]], sources: list[str], references: list[list[str]],
                     edges: list[int]) -> pd.DataFrame:
    """BLEU and chrF of every system within each band of source length (words): [edges[i], edges[i+1])."""
    words = np.array([len(s.split()) for s in sources])
    rows = []
    for low, high in zip(edges[:-1], edges[1:]):
        chosen = np.flatnonzero((words >= low) & (words < high))
        if not len(chosen):
            continue
        refs = [references[i] for i in chosen]
        for name, hypotheses in outputs.items():
            hyps = [hypotheses[i] for i in chosen]
            rows.append({"source_words": f"{low}-{high - 1}", "system": name, "sentences": len(chosen),
                         "bleu": round(score("bleu", hyps, refs), 2), "chrf": round(score("chrf", hyps, refs), 2)})
    return pd.DataFrame(rows)


def non_diagonal(row: dict[str, Any]) -> tuple[int, int]:
    """How far an attention matrix is from a diagonal: (has "ne/n' ... pas", times the attended source position
    moves backwards)."""
    weights = row["attention"]
    if not len(weights):
        return 0, 0
    positions = weights.argmax(dim=1).tolist()
    backwards = sum(1 for a, b in zip(positions, positions[1:]) if b < a)
    words = row["translation"].lower().replace("'", "' ").split()
    negation = int(("ne" in words or "n'" in words) and "pas" in words)
    return negation, backwards


def draw_attention(rows: list[dict[str, Any]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = 2
    lines = max(1, (len(rows) + columns - 1) // columns)
    fig, axes = plt.subplots(lines, columns, figsize=(12, 4.6 * lines), squeeze=False)
    for ax, row in zip(axes.flat, rows):
        weights = row["attention"].numpy()
        ax.imshow(weights, cmap="Greys", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(row["source_pieces"])), [p.replace("\u2581", "_") for p in row["source_pieces"]],
                      rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(row["target_pieces"])), [p.replace("\u2581", "_") for p in row["target_pieces"]],
                      fontsize=8)
        ax.set_title(f"{row['text'][:60]}\n-> {row['translation'][:60]}", fontsize=9)
    for ax in list(axes.flat)[len(rows):]:
        ax.axis("off")
    fig.suptitle("attention of the seq2seq model on test sentences (rows: output pieces, columns: source pieces)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def test_figures(outputs: dict[str, list[str]], references: list[list[str]], groups: list[str], resamples: int,
                 seed: int) -> dict[str, float]:
    """Every system's figures with 95% intervals (resampling whole groups of near-copy sources), and the seq2seq
    model's paired differences against each baseline."""
    figures, samples = bootstrap(outputs, references, resamples, seed, groups)
    metrics: dict[str, Any] = {}
    for name in outputs:
        metrics.update(flat(name, figures[name]))
    for baseline in ("word_by_word", "copy"):
        for m in (*METRICS, "exact_match"):
            observed = figures[SEQ2SEQ][m] - figures[baseline][m]
            for k, v in paired_difference(samples[SEQ2SEQ][m], samples[baseline][m], observed).items():
                metrics[f"seq2seq_vs_{baseline}_{m}_{k}"] = v
    return metrics


def evaluate(params: dict[str, Any], paths: AppPaths) -> tuple[dict[str, Any], list[Path]]:
    cfg = params["evaluate"]
    model = load(paths.model_dir)
    outputs, rows, sources, references, record = system_outputs(params, paths, model, "test")
    group_of = source_groups(paths, "test")
    groups = [group_of.get(source, source) for source in sources]
    metrics = test_figures(outputs, references, groups, cfg["bootstrap_resamples"], params["seed"])
    metrics["n_test_groups"] = len(set(groups))
    if (paths.prepared / "nearest.csv").is_file():  # not for numbers_dates, split by value
        similarity = read_nearest(paths.prepared / "nearest.csv")
        far = far_items(similarity)
        chosen = [i for i, source in enumerate(sources) if source in far]
        metrics.update({f"far_{k}": v for k, v in test_figures({n: [o[i] for i in chosen] for n, o in outputs.items()},
                                                               [references[i] for i in chosen],
                                                               [groups[i] for i in chosen],
                                                               cfg["bootstrap_resamples"], params["seed"]).items()})
        metrics.update({"n_far_test": len(chosen),
                        "far_max_source_similarity": round(max((similarity[s] for s in far), default=0.0), 4),
                        "test_max_source_similarity": round(max(similarity.values(), default=0.0), 4)})
    metrics.update(record)
    metrics.update({"n_test": len(references), "n_test_pairs": sum(map(len, references)),
                    "decoding_beam_width": model.beam_width})

    paths.plots.mkdir(parents=True, exist_ok=True)
    files = []
    breakdown = length_breakdown(outputs, sources, references, list(cfg["length_edges"]))
    breakdown.to_csv(paths.plots / "by_length.csv", index=False)
    files.append(paths.plots / "by_length.csv")
    shown = min(cfg["examples"], len(sources))
    examples = pd.DataFrame({"source": sources[:shown], "reference": [" | ".join(r) for r in references[:shown]],
                             **{name: out[:shown] for name, out in outputs.items()}})
    examples.to_csv(paths.plots / "examples.csv", index=False)
    files.append(paths.plots / "examples.csv")
    shown_rows = [r for r in rows[SEQ2SEQ] if len(r["target_pieces"]) and len(r["source_pieces"])]
    candidates = [r for r in shown_rows if 3 <= len(r["target_pieces"]) <= cfg["attention_max_pieces"]
                  and len(r["source_pieces"]) <= cfg["attention_max_pieces"]] or shown_rows
    chosen = sorted(candidates, key=lambda r: non_diagonal(r), reverse=True)[: cfg["attention_examples"]]
    files.append(draw_attention(chosen, paths.plots / "attention.png"))
    return metrics, files
