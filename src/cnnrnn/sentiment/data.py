"""Read labelled sentences, split them by seed (near-copies kept in one split), and encode them with a vocabulary
built on the training split.

Output of ``prepare`` (``data/sentiment/prepared/``):
``{train,val,test}.pt`` and ``contrast_{seen,val,unseen}.pt`` — dicts with ``ids`` (int64, all sentences'
token ids end to end), ``lengths`` (int64, N) and ``labels`` (int64, N; 1 = positive), and in ``train.pt``
``order_sentence`` (bool, N: a generated order sentence, not a real snippet); ``vocab.json``; ``lexicon.pt``
(float, V: each vocabulary word's rated valence / 4, 0 if unrated); ``contrast.csv`` (set, template, shape,
follows, pair, sentence, label; sentences 2i and 2i+1 of a set form its pair i, a template's pairs together);
``nearest.csv`` (each validation and test snippet, in order, its most similar training snippet and their
similarity: prepare stops if one reaches ``near_copy_threshold``); ``nearest_shapes.csv`` (each validation and
test template's most similar training template by shape: prepare stops at 1.0, the same shape);
``manifest.csv`` (split, label, count); ``info.json``.
No Lightning, no MLflow.
"""

from __future__ import annotations

import json
import random
import tarfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from cnnrnn.errors import UserError
from cnnrnn.near_copies import check_no_near_copies, connected_groups, nearest, summary, write_nearest
from cnnrnn.sentence_similarity import sentence_similarity
from cnnrnn.sentiment.contrast import (CONTRAST_SETS, SHAPE_THRESHOLD, contrast_pairs, nearest_shapes, shape,
                                      shared_shapes, training_sentences, training_words)
from cnnrnn.text import Vocabulary, tokenize_words

SPLITS = ("train", "val", "test")
Example = tuple[str, int]  # (text, label); label 1 = positive


def read_valence_snippets(path: Path, neutral_band: float) -> list[Example]:
    """Hutto & Gilbert's ground-truth files (id TAB mean valence -4..+4 TAB text) -> (text, valence > 0).

    Snippets with |valence| <= ``neutral_band`` are dropped: raters did not agree on a polarity.
    """
    try:
        lines = path.read_text(encoding="utf-8", errors="strict").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path} is not a UTF-8 text file ({err}); delete data/sentiment/raw and fetch again") from err
    examples = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        try:
            valence = float(fields[1])
        except (IndexError, ValueError):
            raise UserError(f"{path}:{number}: expected 'id<TAB>valence<TAB>text', got {line[:80]!r}") from None
        if abs(valence) > neutral_band and len(fields) >= 3 and fields[2].strip():
            examples.append((fields[2].strip(), int(valence > 0)))
    if not examples:
        raise UserError(f"{path} holds no snippets with |valence| > {neutral_band}")
    return examples


def read_lexicon(path: Path) -> dict[str, float]:
    """VADER's lexicon (token TAB mean valence -4..+4 TAB ...) -> {token: valence / 4}."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as err:
        raise UserError(f"cannot read {path} ({err}); delete data/sentiment/raw and fetch again") from err
    lexicon = {}
    for number, line in enumerate(lines, 1):
        fields = line.split("\t")
        if len(fields) < 2:
            continue
        try:
            lexicon[fields[0].lower()] = float(fields[1]) / 4
        except ValueError:
            raise UserError(f"{path}:{number}: expected 'token<TAB>valence<TAB>...', got {line[:80]!r}") from None
    return lexicon


def read_imdb_archive(path: Path) -> dict[str, list[Example]]:
    """``aclImdb_v1.tar.gz`` read in place: {"train": [...], "test": [...]} from ``aclImdb/<split>/{pos,neg}/*.txt``."""
    out: dict[str, list[Example]] = {"train": [], "test": []}
    try:
        with tarfile.open(path) as tf:
            for member in tf:
                parts = member.name.split("/")
                if member.isfile() and len(parts) == 4 and parts[1] in out and parts[2] in ("pos", "neg") \
                        and parts[3].endswith(".txt"):
                    text = tf.extractfile(member).read().decode("utf-8", errors="replace").replace("<br />", " ")
                    out[parts[1]].append((text, int(parts[2] == "pos")))
    except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
        raise UserError(f"{path} is corrupt or truncated ({err}); delete data/sentiment/raw and fetch again") from err
    for split, examples in out.items():
        if not examples:
            raise UserError(f"{path} has no aclImdb/{split}/pos|neg/*.txt reviews; is it the IMDB archive?")
        examples.sort()  # tar order is arbitrary; the split must not depend on it
    return out


def load_splits(data_cfg: dict[str, Any], raw: Path, seed: int) -> dict[str, list[Example]]:
    """The raw files named by ``data_cfg['format']`` -> train/val/test examples."""
    for key in ("val_fraction", "test_fraction"):
        value = data_cfg[key]
        if value is not None and not (isinstance(value, (int, float)) and 0 < value < 1):
            raise UserError(f"sentiment.data.{key} must be a number between 0 and 1 (or null), not {value!r}")
    fmt = data_cfg["format"]
    if fmt == "valence_snippets":
        pool = read_valence_snippets(raw / data_cfg["snippets_file"], data_cfg["neutral_band"])
        random.Random(seed).shuffle(pool)
        n_test = round(data_cfg["test_fraction"] * len(pool))
        pools = {"test": pool[:n_test], "train": pool[n_test:]}
    elif fmt == "imdb":
        pools = read_imdb_archive(raw / next(iter(data_cfg["source"]["files"])))
    else:
        raise UserError(f"unknown sentiment data format {fmt!r}; use valence_snippets or imdb")
    train = list(pools["train"])
    # Another seed stream for val, so changing val_fraction never moves the test set.
    random.Random(seed + 1).shuffle(train)
    n_val = round(data_cfg["val_fraction"] * len(train))
    splits = {"train": train[n_val:], "val": train[:n_val], "test": pools["test"]}
    if data_cfg.get("near_copy_threshold") is None:  # IMDB: its own published split
        return splits
    return keep_near_copies_together(splits, data_cfg["near_copy_threshold"])


HELD_OUT_FIRST = ("test", "val", "train")


def near_copy_links(texts: list[str], threshold: float, chunk: int = 1000) -> list[tuple[int, int]]:
    """Pairs (i, j), i < j, of texts at least ``threshold`` alike (:func:`sentence_similarity`: the larger of
    folded-word Indel and character 3-gram Dice similarity), computed ``chunk`` rows at a time."""
    links = []
    for start in range(0, len(texts), chunk):
        rows, columns = np.nonzero(sentence_similarity(texts[start:start + chunk], texts) >= threshold)
        links += [(start + r, c) for r, c in zip(rows.tolist(), columns.tolist()) if start + r < c]
    return links


def keep_near_copies_together(splits: dict[str, list[Example]], threshold: float) -> dict[str, list[Example]]:
    """Each group of near-copy snippets (linked at ``threshold`` or more, connected) moved whole into the most held-out
    split one of its members is in (test, then val): the seeded split changes only where a group straddled it."""
    items = [(split, example) for split in HELD_OUT_FIRST for example in splits[split]]
    group_of = connected_groups(range(len(items)), near_copy_links([text for _, (text, _) in items], threshold))
    rank: dict[int, int] = {}
    for index, group in group_of.items():
        rank[group] = min(rank.get(group, len(HELD_OUT_FIRST)), HELD_OUT_FIRST.index(items[index][0]))
    out: dict[str, list[Example]] = {split: [] for split in HELD_OUT_FIRST}
    for index, (_, example) in enumerate(items):
        out[HELD_OUT_FIRST[rank[group_of[index]]]].append(example)
    return {split: out[split] for split in SPLITS}


def nearest_training_snippets(splits: dict[str, list[Example]]) -> dict[str, list[tuple[str, str, float]]]:
    """For every validation and test snippet, in order: (snippet, its most similar training snippet, similarity).
    Keyed by position, so a snippet that occurs twice keeps both rows."""
    train = {i: text for i, (text, _) in enumerate(splits["train"])}
    out = {}
    for split in ("val", "test"):
        found = nearest({i: text for i, (text, _) in enumerate(splits[split])}, train, sentence_similarity)
        out[split] = [(splits[split][i][0], train[j], similarity) for i, j, similarity in found]
    return out


def encode(examples: list[Example], vocab: Vocabulary, max_tokens: int | None) -> dict[str, Any]:
    """Examples -> {"ids": (sum of lengths,), "lengths": (N,), "labels": (N,)}; empty texts become one <unk>."""
    import torch

    ids, lengths = [], []
    for text, _ in examples:
        tokens = vocab.encode(tokenize_words(text)) or vocab.encode(["<unk>"])
        if max_tokens:
            tokens = tokens[:max_tokens]
        ids.extend(tokens)
        lengths.append(len(tokens))
    return {"ids": torch.tensor(ids, dtype=torch.int64), "lengths": torch.tensor(lengths, dtype=torch.int64),
            "labels": torch.tensor([label for _, label in examples], dtype=torch.int64)}


def prepare(params: dict[str, Any], raw: Path, out: Path) -> dict[str, Any]:
    """Write the encoded splits, the contrast sets, the vocabulary, manifest and info; return the info."""
    import pandas as pd
    import torch

    data_cfg, seed = params["data"], params["seed"]
    splits = load_splits(data_cfg, raw, seed)
    real = dict(splits)  # the snippets alone, before the order sentences join the training split
    order_cfg = data_cfg["order_sentences"]
    lexicon = read_lexicon(raw / data_cfg["lexicon_file"]) if data_cfg["lexicon_file"] else {}
    words = training_words(lexicon if order_cfg["min_lexicon_rating"] is not None else None,
                           {w for text, _ in splits["train"] for w in tokenize_words(text)},
                           (order_cfg["min_lexicon_rating"] or 0) / 4)
    added = training_sentences(order_cfg["count"], seed, words) if order_cfg["count"] else []
    train = [(example, False) for example in splits["train"]] + [(example, True) for example in added]
    random.Random(seed + 2).shuffle(train)
    splits["train"] = [example for example, _ in train]
    vocab = Vocabulary.build((tokenize_words(t) for t, _ in splits["train"]), min_count=data_cfg["min_count"],
                             max_size=data_cfg["max_vocabulary"])
    contrast = {name: contrast_pairs(name, data_cfg["contrast_pairs"], seed) for name in CONTRAST_SETS}
    out.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        encoded = encode(splits[split], vocab, data_cfg["max_tokens"])
        if split == "train":
            encoded["order_sentence"] = torch.tensor([is_order for _, is_order in train], dtype=torch.bool)
        torch.save(encoded, out / f"{split}.pt")
    rows = []
    for name, pairs in contrast.items():
        torch.save(encode([s for _, pair in pairs for s in pair], vocab, None), out / f"{name}.pt")
        follows = dict(CONTRAST_SETS[name])
        rows += [{"set": name, "template": template, "shape": shape(template), "follows": follows[template], "pair": i,
                  "sentence": text, "label": label} for i, (template, pair) in enumerate(pairs) for text, label in pair]
    nearest = {split: nearest_shapes(split) for split in ("val", "test")}
    for split, found in nearest.items():
        check_no_near_copies(found, SHAPE_THRESHOLD, f"{split} template", "shape similarity")
    if shared_shapes():
        raise UserError(f"validation and test templates share a shape: {shared_shapes()[:3]}; report this")
    write_nearest(out / "nearest_shapes.csv", nearest)
    threshold = data_cfg.get("near_copy_threshold")
    snippets = nearest_training_snippets(real) if threshold is not None else {}
    for split, found in snippets.items():
        check_no_near_copies(found, threshold, f"sentiment {split} snippet", "snippet similarity")
    if snippets:
        write_nearest(out / "nearest.csv", snippets)
    vocab.save(out / "vocab.json")
    torch.save(torch.tensor([lexicon.get(t, 0.0) for t in vocab.tokens], dtype=torch.float32), out / "lexicon.pt")
    pd.DataFrame(rows).to_csv(out / "contrast.csv", index=False)
    manifest = [{"split": split, "label": name, "count": sum(1 for _, y in splits[split] if y == value)}
                for split in SPLITS for value, name in ((0, "negative"), (1, "positive"))]
    pd.DataFrame(manifest).to_csv(out / "manifest.csv", index=False)
    # A contrast word outside the vocabulary is <unk> to every model: a construction word ("although") would vanish.
    unknown = {w for row in rows for w in tokenize_words(row["sentence"]) if w not in vocab.index}
    source = json.loads((raw / "source.json").read_text()) if (raw / "source.json").exists() else {}
    info = {"dataset": data_cfg["name"], "classes": ["negative", "positive"], "vocabulary_size": len(vocab),
            "sizes": {**{s: len(splits[s]) for s in SPLITS}, **{n: 2 * len(p) for n, p in contrast.items()}},
            "order_sentences_in_train": len(added),
            "vocabulary_words_in_lexicon": sum(1 for t in vocab.tokens if t in lexicon),
            "contrast_words_not_in_vocabulary": sorted(unknown),
            "contrast_templates": {n: len({t for t, _ in p}) for n, p in contrast.items()},
            "training_adjectives": {"positive": len(words.positive), "negative": len(words.negative)},
            "nearest_training_shape": {split: summary(found, SHAPE_THRESHOLD) for split, found in nearest.items()},
            "nearest_training_snippet": {split: summary(found, threshold) for split, found in snippets.items()},
            "source": source}
    (out / "info.json").write_text(json.dumps(info, indent=2) + "\n")
    return info
