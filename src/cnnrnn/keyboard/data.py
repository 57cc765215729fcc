"""Read the texts, split them (by work where there are works), and encode words and characters.

Output of ``prepare`` (``data/keyboard/prepared/``):
``words.pt`` — {split: int64 ids of the word tokens, end to end} with the vocabulary of ``vocab.json``
(built from the training split; rarer words are ``<unk>``); ``test_words.txt`` — the test tokens
spelled out (lower-cased; the keystroke measure needs the letters of words the vocabulary lacks);
``chars.pt`` — {split: int64 ids of the characters} with ``chars.json``; ``manifest.csv`` — one row
per text (split, words, characters); ``info.json``. No Lightning, no MLflow.
"""

from __future__ import annotations

import json
import random
import zipfile
import zlib
from pathlib import Path
from typing import Any

from cnnrnn.errors import UserError
from cnnrnn.text import UNK, Vocabulary, tokenize_words

SPLITS = ("train", "val", "test")


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return path.read_text(encoding="latin-1")
    except OSError as err:
        raise UserError(f"cannot read {path} ({err}); delete data/keyboard/raw and fetch again") from err


def split_works(works: dict[str, str], test_fraction: float, val_fraction: float, seed: int) -> dict[str, list[str]]:
    """Whole works to test and val (in seeded order, until each holds its fraction of the characters), the rest to train."""
    names = sorted(works)
    random.Random(seed).shuffle(names)
    total = sum(len(t) for t in works.values())
    splits: dict[str, list[str]] = {s: [] for s in SPLITS}
    for name in names:
        for split, fraction in (("test", test_fraction), ("val", val_fraction), ("train", 1.0)):
            if sum(len(works[n]) for n in splits[split]) < fraction * total:
                splits[split].append(name)
                break
    if not splits["train"] or not splits["test"] or not splits["val"]:
        raise UserError(f"{len(works)} texts are too few to split into train, val and test by work")
    return {s: sorted(v) for s, v in splits.items()}


def load_texts(data_cfg: dict[str, Any], raw: Path, seed: int) -> dict[str, dict[str, str]]:
    """{split: {text name: text}} from the raw files, as ``data_cfg['format']`` says."""
    fmt = data_cfg["format"]
    if fmt == "works":  # one file per work: whole works go to one split
        works = {p.name.removesuffix(data_cfg["work_suffix"]): read_text(p)
                 for p in sorted(raw.glob(f"*{data_cfg['work_suffix']}"))}
        if not works:
            raise UserError(f"{raw} holds no *{data_cfg['work_suffix']} files; delete data/keyboard/raw and fetch again")
        names = split_works(works, data_cfg["test_fraction"], data_cfg["val_fraction"], seed)
        return {s: {n: works[n] for n in names[s]} for s in SPLITS}
    if fmt == "one_text":  # e.g. Tiny Shakespeare: the last test_fraction is test, the val_fraction before it val
        text = read_text(raw / next(iter(data_cfg["source"]["files"])))
        n_test, n_val = int(len(text) * data_cfg["test_fraction"]), int(len(text) * data_cfg["val_fraction"])
        cut_val, cut_test = len(text) - n_test - n_val, len(text) - n_test
        return {"train": {"train": text[:cut_val]}, "val": {"val": text[cut_val:cut_test]}, "test": {"test": text[cut_test:]}}
    if fmt == "wikitext":  # the official split inside the zip
        archive = raw / next(iter(data_cfg["source"]["files"]))
        files = {"train": "wiki.train.tokens", "val": "wiki.valid.tokens", "test": "wiki.test.tokens"}
        try:
            with zipfile.ZipFile(archive) as zf:
                names = {Path(n).name: n for n in zf.namelist()}
                missing = [f for f in files.values() if f not in names]
                if missing:
                    raise UserError(f"{archive} lacks {', '.join(missing)}; is it wikitext-2-v1.zip?")
                return {s: {f: zf.read(names[f]).decode("utf-8")} for s, f in files.items()}
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as err:
            raise UserError(f"{archive} is corrupt or truncated ({err}); delete data/keyboard/raw and fetch again") from err
    raise UserError(f"unknown keyboard data format {fmt!r}; use works, one_text or wikitext")


def character_vocabulary(text: str) -> list[str]:
    """``<pad>``, ``<unk>``, then every character of the training text in code-point order."""
    return ["<pad>", UNK, *sorted(set(text))]


def prepare(params: dict[str, Any], raw: Path, out: Path) -> dict[str, Any]:
    import pandas as pd
    import torch

    data_cfg, seed = params["data"], params["seed"]
    texts = load_texts(data_cfg, raw, seed)
    punctuation = data_cfg["punctuation"]
    tokens = {s: [t for text in texts[s].values() for t in tokenize_words(text, punctuation)] for s in SPLITS}
    vocab = Vocabulary.build([tokens["train"]], min_count=data_cfg["min_count"], max_size=data_cfg["max_vocabulary"])
    joined = {s: "\n".join(texts[s].values()) for s in SPLITS}
    chars = character_vocabulary(joined["train"])
    char_index = {c: i for i, c in enumerate(chars)}
    out.mkdir(parents=True, exist_ok=True)
    torch.save({s: torch.tensor(vocab.encode(tokens[s]), dtype=torch.int64) for s in SPLITS}, out / "words.pt")
    torch.save({s: torch.tensor([char_index.get(c, 1) for c in joined[s]], dtype=torch.int64) for s in SPLITS},
               out / "chars.pt")
    vocab.save(out / "vocab.json")
    (out / "chars.json").write_text(json.dumps(chars) + "\n")
    (out / "test_words.txt").write_text(" ".join(tokens["test"]) + "\n")
    rows = [{"split": s, "text": name, "words": len(tokenize_words(text, punctuation)), "characters": len(text)}
            for s in SPLITS for name, text in texts[s].items()]
    pd.DataFrame(rows).to_csv(out / "manifest.csv", index=False)
    unknown = {s: round(sum(1 for t in tokens[s] if t not in vocab.index) / max(1, len(tokens[s])), 4) for s in SPLITS}
    source = json.loads((raw / "source.json").read_text()) if (raw / "source.json").exists() else {}
    info = {"dataset": data_cfg["name"], "vocabulary_size": len(vocab), "characters": len(chars),
            "sizes": {s: len(tokens[s]) for s in SPLITS}, "character_sizes": {s: len(joined[s]) for s in SPLITS},
            "unknown_word_rate": unknown, "texts": {s: sorted(texts[s]) for s in SPLITS}, "source": source}
    (out / "info.json").write_text(json.dumps(info, indent=2) + "\n")
    return info
