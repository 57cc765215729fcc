"""Read sentence pairs, split them so test sentences are unseen, and learn the tokens on the training pairs.

Formats (``translate.data.format``):

- ``catalogs``: gettext catalogs of translated software (:mod:`cnnrnn.translate.catalogs`); the raw files
  are named ``<project>...<lang>.<domain>.po`` and ``data.target`` picks the language;
- ``numbers_dates``: rule-generated pairs, split by value (:mod:`cnnrnn.translate.rules`);
- ``tutorial_zip``: PyTorch's seq2seq tutorial ``data.zip`` (member ``data/eng-fra.txt``: English, tab, French),
  filtered the way the tutorial filters (fewer than ``max_words`` words, English starting with ``prefixes``);
- ``tsv``: a local tab-separated file of pairs (source, tab, target; further columns ignored).

Except for ``numbers_dates``, pairs are split by their *source* string with near-duplicates grouped: the
same English up to case, spacing and punctuation is one group, and a group belongs to one split.

Output (``data/translate/prepared/``): ``{train,val,test}.pt`` (``source``, ``target`` strings and their
token ids), ``{train,val,test}.tsv`` (the pairs, readable), ``tokenizer.pt`` (:mod:`cnnrnn.translate.tokens`)
and ``info.json``. No Lightning, no MLflow.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
import zipfile
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

from cnnrnn.errors import UserError
from cnnrnn.translate.catalogs import catalog_pairs, clean, read_po

SPLITS = ("train", "val", "test")


def group_key(source: str) -> str:
    """What makes two source strings near-duplicates: the same letters and digits, ignoring case, spacing and
    punctuation ("E-mail address" and "email address", "Search term(s)" and "Search terms")."""
    return re.sub(r"[\W_]+", "", source.casefold())


def split_by_source(pairs: list[dict[str, str]], val_fraction: float, test_fraction: float,
                    seed: int) -> dict[str, list[dict[str, str]]]:
    """Whole groups (:func:`group_key`) to test and val in seeded order, until each holds its fraction of the pairs."""
    groups: dict[str, list[dict[str, str]]] = {}
    for pair in pairs:
        groups.setdefault(group_key(pair["source"]), []).append({**pair, "group": group_key(pair["source"])})
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    splits: dict[str, list[dict[str, str]]] = {s: [] for s in SPLITS}
    for key in keys:
        for split, fraction in (("test", test_fraction), ("val", val_fraction), ("train", 1.0)):
            if len(splits[split]) < fraction * len(pairs):
                splits[split].extend(groups[key])
                break
    return splits


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


def read_pairs(params: dict[str, Any], raw: Path) -> dict[str, list[dict[str, str]]]:
    """``{split: [{"source", "target", ...}]}`` as ``translate.data.format`` says."""
    data, seed = params["data"], params["seed"]
    fmt = data["format"]
    if fmt == "numbers_dates":
        from cnnrnn.translate.rules import generate

        return generate(data, data["target"], seed)
    readers = {"catalogs": read_catalogs, "tutorial_zip": read_tutorial_zip, "tsv": read_tsv}
    if fmt not in readers:
        raise UserError(f"unknown translate data format {fmt!r}; use catalogs, numbers_dates, tutorial_zip or tsv")
    pairs = readers[fmt](data, raw)
    if len(pairs) < 10:
        raise UserError(f"only {len(pairs)} sentence pairs in {raw}; a translation model needs many more")
    splits = split_by_source(pairs, data["val_fraction"], data["test_fraction"], seed)
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
    splits = read_pairs(params, raw)
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
    source = json.loads((raw / "source.json").read_text()) if (raw / "source.json").exists() else {}
    info = {"dataset": data["name"], "format": data["format"], "target": data["target"], "sizes": sizes,
            "tokens": data["tokens"]["kind"], "vocabulary_size": tokenizer.size, "unknown_token_rate": unknown,
            "mean_target_tokens": lengths,
            "origins": dict(Counter(p.get("origin", "rules") for p in train)), "source": source}
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
