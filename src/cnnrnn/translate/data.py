"""Read sentence pairs, split them so test sentences are unseen, and learn the tokens on the training pairs.

Formats (``translate.data.format``):

- ``catalogs``: gettext catalogs of translated software (:mod:`cnnrnn.translate.catalogs`); the raw files
  are named ``<project>...<lang>.<domain>.po`` and ``data.target`` picks the language;
- ``numbers_dates``: rule-generated pairs, split by value (:mod:`cnnrnn.translate.rules`);
- ``tutorial_zip``: PyTorch's seq2seq tutorial ``data.zip`` (member ``data/eng-fra.txt``: English, tab, French),
  filtered the way the tutorial filters (fewer than ``max_words`` words, English starting with ``prefixes``);
- ``tsv``: a local tab-separated file of pairs (source, tab, target; further columns ignored).

Except for ``numbers_dates``, pairs are split by their *source* string with near-copies grouped
(:mod:`cnnrnn.sentence_similarity`): two English sources whose folded words or character 3-grams have a
similarity of ``near_copy_threshold`` or more are linked, linked sources form one group (and the same English
up to case, spacing and punctuation always does), and a group belongs to one split. ``nearest.csv`` gives each
validation and test source's most similar training source; prepare stops if one reaches the threshold.
Pairs whose translation does not match their source (a catalog entry whose English changed after it was
translated) are dropped first when ``alignment_filter`` is on (:mod:`cnnrnn.translate.alignment`).

Output (``data/translate/prepared/``): ``{train,val,test}.pt`` (``source``, ``target`` strings and their
token ids), ``{train,val,test}.tsv`` (the pairs, readable), ``tokenizer.pt`` (:mod:`cnnrnn.translate.tokens`)
and ``info.json``. No Lightning, no MLflow.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
import zipfile
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

from cnnrnn.errors import UserError
from cnnrnn.near_copies import (check_no_near_copies, connected_groups, linked_pairs, nearest, split_groups, summary,
                                write_nearest)
from cnnrnn.translate.catalogs import catalog_pairs, clean, read_po
from cnnrnn.sentence_similarity import sentence_similarity

SPLITS = ("train", "val", "test")
# A group of near-copies larger than this share of the smaller held-out split goes to training: UI strings chain
# into families of hundreds ("Are you sure you want to delete ...?"), and one of them must not fill a test set.
LARGEST_HELD_OUT_GROUP = 0.25


def group_key(source: str) -> str:
    """What makes two source strings near-duplicates: the same letters and digits, ignoring case, spacing and
    punctuation ("E-mail address" and "email address", "Search term(s)" and "Search terms")."""
    return re.sub(r"[\W_]+", "", source.casefold())


def split_by_source(pairs: list[dict[str, str]], val_fraction: float, test_fraction: float, seed: int,
                    threshold: float) -> dict[str, list[dict[str, str]]]:
    """Whole groups of near-copy sources to test and val in seeded order, until each holds its fraction of the
    pairs; each pair's ``group`` names its group (the :func:`group_key` of one of its sources)."""
    by_key: dict[str, list[dict[str, str]]] = {}
    for pair in pairs:
        by_key.setdefault(group_key(pair["source"]), []).append(pair)
    keys = sorted(by_key)
    texts = {k: by_key[k][0]["source"] for k in keys}
    group_of = connected_groups(keys, linked_pairs(texts, sentence_similarity, threshold))
    owner = split_groups(group_of, {k: len(by_key[k]) for k in keys}, {"test": test_fraction, "val": val_fraction},
                         seed, largest_held_out=LARGEST_HELD_OUT_GROUP)
    splits: dict[str, list[dict[str, str]]] = {s: [] for s in SPLITS}
    for key in keys:
        splits[owner[key]].extend({**pair, "group": group_of[key]} for pair in by_key[key])
    return splits


def nearest_training_sources(splits: dict[str, list[dict[str, str]]]) -> dict[str, list[tuple[str, str, float]]]:
    """``{split: [(source, most similar training source, similarity)]}`` for val and test, each source once."""
    train = {p["source"]: p["source"] for p in splits["train"]}
    return {s: nearest({p["source"]: p["source"] for p in splits[s]}, train, sentence_similarity) for s in ("val", "test")}


def catalog_language(name: str) -> str:
    """``weblate.fr.django.po`` -> ``fr``."""
    parts = name.split(".")
    return parts[-3] if len(parts) >= 3 else ""


def read_catalogs(data: dict[str, Any], raw: Path) -> list[dict[str, str]]:
    files = sorted(p for p in raw.glob("*.po"))
    languages = sorted({catalog_language(p.name) for p in files})
    chosen = [p for p in files if catalog_language(p.name) == data["target"]]
    if not chosen:
        raise UserError(f"no {data['target']!r} catalogs in {raw} (languages there: {', '.join(languages) or 'none'}); "
                        f"set translate.data.target to one of them, or fetch again")
    seen, pairs = set(), []
    for path in chosen:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as err:
            raise UserError(f"{path} is not a readable UTF-8 catalog ({err}); delete data/translate/raw and fetch again") from err
        for source, target in catalog_pairs(read_po(text, path.name), data["min_words"], data["max_words"]):
            source, target = normalize(source), normalize(target)
            if (source, target) not in seen:
                seen.add((source, target))
                pairs.append({"source": source, "target": target, "origin": path.name.split(".")[0]})
    return pairs


def normalize(text: str) -> str:
    """Typographic apostrophes as plain ones: the catalogs mix both for the same word."""
    return clean(text).replace("\u2019", "'")


def read_tutorial_zip(data: dict[str, Any], raw: Path) -> list[dict[str, str]]:
    archive = raw / next(iter(data["source"]["files"]))
    try:
        with zipfile.ZipFile(archive) as zf:
            if data["member"] not in zf.namelist():
                raise UserError(f"{archive} has no {data['member']}; is it the PyTorch tutorial's data.zip?")
            lines = zf.read(data["member"]).decode("utf-8").splitlines()
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, UnicodeDecodeError) as err:
        raise UserError(f"{archive} is corrupt or truncated ({err}); delete data/translate/raw and fetch again") from err
    prefixes = tuple(p.lower() for p in data.get("prefixes") or [])
    pairs, seen = [], set()
    for line in lines:
        columns = line.split("\t")
        if len(columns) < 2:
            continue
        source, target = normalize(columns[0]), normalize(columns[1])
        if not (len(source.split()) < data["max_words"] and len(target.split()) < data["max_words"]):
            continue
        if prefixes and not source.lower().startswith(prefixes):
            continue
        if source and target and (source, target) not in seen:
            seen.add((source, target))
            pairs.append({"source": source, "target": target, "origin": "tatoeba"})
    return pairs


def read_tsv(data: dict[str, Any], raw: Path) -> list[dict[str, str]]:
    path = raw / next(iter(data["source"]["files"]))
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path} is not a readable UTF-8 file ({err}); give a tab-separated file: source<TAB>target") from err
    pairs, seen = [], set()
    for number, row in enumerate(csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE), 1):
        if not row or not "".join(row).strip():
            continue
        if len(row) < 2:
            raise UserError(f"{path} line {number}: expected source<TAB>target, got {row[0][:60]!r}")
        source, target = normalize(row[0]), normalize(row[1])
        if source and target and (source, target) not in seen:
            seen.add((source, target))
            pairs.append({"source": source, "target": target, "origin": path.name})
    return pairs


def read_pairs(params: dict[str, Any], raw: Path, counts: dict[str, int] | None = None) -> dict[str, list[dict[str, str]]]:
    """``{split: [{"source", "target", ...}]}`` as ``translate.data.format`` says; ``counts`` (if given) gets
    ``pairs_read`` and ``pairs_dropped_as_misaligned``."""
    data, seed = params["data"], params["seed"]
    fmt = data["format"]
    if fmt == "numbers_dates":
        from cnnrnn.translate.rules import generate

        return generate(data, data["target"], seed)
    readers = {"catalogs": read_catalogs, "tutorial_zip": read_tutorial_zip, "tsv": read_tsv}
    if fmt not in readers:
        raise UserError(f"unknown translate data format {fmt!r}; use catalogs, numbers_dates, tutorial_zip or tsv")
    pairs = readers[fmt](data, raw)
    if data["alignment_filter"]["enabled"]:
        from cnnrnn.translate.alignment import misaligned

        dropped = misaligned([(p["source"], p["target"]) for p in pairs], data["alignment_filter"])
        print(f"prepare: the alignment filter dropped {sum(dropped)} of {len(dropped)} pairs", file=sys.stderr)
        if counts is not None:
            counts.update({"pairs_read": len(pairs), "pairs_dropped_as_misaligned": sum(dropped)})
        pairs = [p for p, drop in zip(pairs, dropped) if not drop]
    if len(pairs) < 10:
        raise UserError(f"only {len(pairs)} sentence pairs in {raw}; a translation model needs many more")
    splits = split_by_source(pairs, data["val_fraction"], data["test_fraction"], seed, data["near_copy_threshold"])
    if not all(splits.values()):
        raise UserError(f"{len(pairs)} pairs are too few to split into train, val and test")
    return splits


def prepare(params: dict[str, Any], raw: Path, out: Path) -> dict[str, Any]:
    import torch

    from cnnrnn.translate.tokens import UNK, Tokenizer

    data = params["data"]
    for key in ("val_fraction", "test_fraction"):
        if not 0 < data[key] < 0.5:
            raise UserError(f"translate.data.{key} is {data[key]}; use a fraction between 0 and 0.5")
    counts: dict[str, int] = {}
    splits = read_pairs(params, raw, counts)
    if not all(splits.values()):
        raise UserError(f"the {', '.join(s for s in SPLITS if not splits[s])} split is empty; use more pairs or other fractions")
    train = splits["train"]
    try:
        tokenizer = Tokenizer.train([p["source"] for p in train] + [p["target"] for p in train], data["tokens"])
    except (ValueError, RuntimeError) as err:  # an unknown kind; sentencepiece: a vocabulary too small for the characters
        raise UserError(f"translate.data.tokens: {str(err)[:200]}") from err
    torch.save(tokenizer.state(), out / "tokenizer.pt")
    sizes, unknown, lengths = {}, {}, {}
    for split, pairs in splits.items():
        source_ids = [tokenizer.encode(p["source"]) for p in pairs]
        target_ids = [tokenizer.encode(p["target"]) for p in pairs]
        torch.save({"source": [p["source"] for p in pairs], "target": [p["target"] for p in pairs],
                    "source_ids": [torch.tensor(i, dtype=torch.int64) for i in source_ids],
                    "target_ids": [torch.tensor(i, dtype=torch.int64) for i in target_ids]}, out / f"{split}.pt")
        with (out / f"{split}.tsv").open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, delimiter="\t", lineterminator="\n")
            writer.writerow(["source", "target", "group_or_value", "origin"])
            for p in pairs:
                writer.writerow([p["source"], p["target"], p.get("value") or p.get("group", ""), p.get("origin", "rules")])
        ids = [i for seq in source_ids + target_ids for i in seq]
        sizes[split] = len(pairs)
        unknown[split] = round(Counter(ids)[UNK] / max(1, len(ids)), 5)
        lengths[split] = round(sum(map(len, target_ids)) / max(1, len(target_ids)), 2)
    check_disjoint(splits)
    near = {}
    if data["format"] != "numbers_dates":  # split by value: "March 5" and "March 6" are meant to be alike
        near = nearest_training_sources(splits)
        write_nearest(out / "nearest.csv", near)
        for split in ("val", "test"):
            check_no_near_copies(near[split], data["near_copy_threshold"], f"translate {split}", "source similarity")
    source = json.loads((raw / "source.json").read_text()) if (raw / "source.json").exists() else {}
    info = {"dataset": data["name"], "format": data["format"], "target": data["target"], "sizes": sizes,
            "tokens": data["tokens"]["kind"], "vocabulary_size": tokenizer.size, "unknown_token_rate": unknown,
            "mean_target_tokens": lengths,
            "origins": dict(Counter(p.get("origin", "rules") for p in train)),
            **counts, "distinct_sources": {split: len({p["source"] for p in pairs}) for split, pairs in splits.items()},
            "nearest_training_source": {s: summary(rows, data["near_copy_threshold"]) for s, rows in near.items()},
            "source": source}
    if data["format"] == "numbers_dates":
        info["generators"] = generator_versions()
    (out / "info.json").write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    return info


def check_disjoint(splits: dict[str, list[dict[str, str]]]) -> None:
    """No source group (or generated value) in two splits: test sentences are unseen."""
    owner: dict[str, str] = {}
    for split, pairs in splits.items():
        for p in pairs:
            key = p.get("value") or p.get("group") or group_key(p["source"])
            if owner.setdefault(key, split) != split:
                raise UserError(f"{key!r} is in both {owner[key]} and {split}; the split is not disjoint")


def generator_versions() -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in ("num2words", "babel")}
