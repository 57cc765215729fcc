"""compose at a small size: real chorales exported from the pinned music21 wheel, real MIDI files, real DVC."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from cnnrnn.config import compose
from cnnrnn.errors import UserError
from cnnrnn.registry import APPLICATIONS
from conftest import fast_dev_run

ROOT = Path(__file__).resolve().parents[1]
TINY = list(APPLICATIONS["compose"].tiny)


@pytest.fixture(scope="session")
def params() -> dict:
    composed = compose(TINY, ROOT)
    return {**composed["compose"], "seed": composed["seed"]}


@pytest.fixture(scope="session")
def prepared(tmp_path_factory, params) -> Path:
    """The chorales bwv1*.mxl of the pinned music21 wheel, exported to MIDI by fetch, prepared with transpositions."""
    from cnnrnn.compose.data import complete_fetch, prepare

    base = tmp_path_factory.mktemp("chorales")
    complete_fetch(params, base / "raw")
    (base / "prepared").mkdir()
    prepare({**params, "data": {**params["data"], "transpose": [-1, 1]}}, base / "raw", base / "prepared")
    return base / "prepared"


def scale_roll(pitches=(60, 62, 64, 65, 67, 69, 71, 72), low: int = 21, size: int = 88) -> np.ndarray:
    roll = np.zeros((len(pitches) * 2, size), np.uint8)
    for i, p in enumerate(pitches):
        roll[2 * i:2 * i + 2, p - low] = 1  # half notes at quarter-note frames
    roll[:4, 48 - low] = 1  # a held bass note under the first two
    return roll


def test_roll_to_midi_to_roll_keeps_the_notes(tmp_path):
    from cnnrnn.compose.midi_files import read_roll, write_midi

    roll = scale_roll()
    (tmp_path / "scale.mid").write_bytes(write_midi(roll, 21, 1))
    assert np.array_equal(read_roll(tmp_path / "scale.mid", 1, 21, 108), roll)
    (tmp_path / "fine.mid").write_bytes(write_midi(roll, 21, 1))  # a finer grid doubles every frame
    assert np.array_equal(read_roll(tmp_path / "fine.mid", 2, 21, 108), np.repeat(roll, 2, axis=0))


def test_broken_files_are_listed_and_skipped_and_an_empty_folder_is_an_error(tmp_path, params):
    from cnnrnn.compose.data import prepare, read_folder
    from cnnrnn.compose.midi_files import write_midi

    folder = tmp_path / "raw" / "midi"
    folder.mkdir(parents=True)
    good = write_midi(scale_roll(), 21, 1)
    (folder / "good.mid").write_bytes(good)
    (folder / "copy.mid").write_bytes(good)  # the same music twice: one is dropped
    (folder / "truncated.mid").write_bytes(good[: len(good) // 2])
    (folder / "text.mid").write_text("not a MIDI file")
    (folder / "empty.mid").write_bytes(b"")
    rolls, skipped, duplicates = read_folder(folder, params["data"])
    assert len(rolls) == 1 and duplicates == 1
    assert set(skipped) == {"truncated.mid", "text.mid", "empty.mid"}
    assert "empty file" in skipped["empty.mid"] and "not a MIDI file" in skipped["text.mid"]
    for name in ("good.mid", "copy.mid"):
        (folder / name).unlink()
    with pytest.raises(UserError, match="no usable MIDI file"):
        prepare(params, tmp_path / "raw", tmp_path)


def test_split_is_by_piece_and_transposed_copies_stay_in_training(prepared):
    import torch

    from cnnrnn.compose.data import piece_of

    names = {s: torch.load(prepared / f"{s}.pt")["names"] for s in ("train", "val", "test")}
    pieces = {s: {piece_of(n.split("@")[0], "music21_corpus") for n in v} for s, v in names.items()}
    assert not pieces["train"] & pieces["test"] and not pieces["train"] & pieces["val"] and not pieces["val"] & pieces["test"]
    assert any("@" in n for n in names["train"]) and not any("@" in n for n in names["val"] + names["test"])
    info = json.loads((prepared / "info.json").read_text())
    assert info["pitches"] == 88 and info["pitch_range_used"][0] >= 21 and sum(info["pieces"].values()) > 10


def test_measures_of_generated_music():
    from cnnrnn.compose.measures import (in_key_ratio, piece_scores, pitch_frequencies, repeat_probabilities,
                                         repetition_rate, span_set, totals)
    from cnnrnn.compose.midi_files import write_midi

    roll = scale_roll(pitches=(60, 64, 67, 72, 67, 64, 60, 62, 65, 67, 71, 72))  # C major, tonic and dominant
    ratio, key = in_key_ratio(write_midi(roll, 21, 1))
    assert ratio == 1.0 and key == "C major"
    assert repetition_rate(roll, span_set([roll], 8), 8) == 1.0
    assert repetition_rate(np.roll(roll, 1, axis=1), span_set([roll], 8), 8) == 0.0
    frequencies = pitch_frequencies([roll])
    held = totals([piece_scores(roll, repeat_probabilities(roll, frequencies, 0.9))])
    assert 0 < held["nll_per_frame"] < 88 * np.log(2) and 0 < held["frame_accuracy"] <= 1


@pytest.mark.parametrize("frame_output", ["independent", "nade"])
def test_fast_dev_run(params, prepared, frame_output):
    model = {**params["model"], "frame_output": frame_output, "nade_units": 8}
    fast_dev_run("compose", {**params, "model": model, "models": {"lstm": model}}, prepared, "lstm")


def test_nade_frame_output_is_one_distribution_over_whole_frames_and_draws_what_it_scores():
    """RNN-NADE: each pitch's logit depends on the pitches below it only, the probabilities of all 2^P frames sum
    to 1 (so the summed BCE is an exact NLL), and drawing pitch by pitch uses the same conditionals."""
    import itertools

    import torch

    from cnnrnn.compose.network import FrameLSTM, predicted_frames

    torch.manual_seed(0)
    pitches = 6
    model = FrameLSTM({"hidden": 8, "layers": 1, "dropout": 0.0, "frame_output": "nade", "nade_units": 4}, pitches).eval()
    history = (torch.rand(1, 3, pitches) < 0.4).float()
    frames = torch.tensor(list(itertools.product([0.0, 1.0], repeat=pitches)))  # every possible 4th frame
    rolls = torch.cat([history.expand(len(frames), -1, -1), frames[:, None]], dim=1)
    with torch.no_grad():
        logits, _ = model(rolls)
    nll = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, -1], frames, reduction="none").sum(1)
    assert torch.exp(-nll.double()).sum().item() == pytest.approx(1.0, abs=1e-5)
    flipped = rolls.clone()
    flipped[:, -1, 3:] = 1 - flipped[:, -1, 3:]
    assert torch.allclose(model(flipped)[0][:, -1, :4], logits[:, -1, :4])  # pitch 3 sees pitches 0-2 only
    hidden, _ = model.recur(model.shifted(rolls[:1]))
    seen = []
    model.draw(hidden[0], lambda logit: seen.append(logit) or rolls[0, :, len(seen) - 1])  # forced: the true pitches
    assert torch.allclose(torch.stack(seen, 1), logits[0], atol=1e-5)
    assert predicted_frames(model, rolls[0]).shape == (4, pitches)
    with pytest.raises(UserError, match="nade_units"):
        FrameLSTM({"hidden": 8, "layers": 1, "dropout": 0.0, "frame_output": "nade", "nade_units": None}, pitches)
    with pytest.raises(UserError, match="frame_output"):
        FrameLSTM({"hidden": 8, "layers": 1, "dropout": 0.0, "frame_output": "made"}, pitches)


def test_tiny_dvc_repro_generate_and_the_mlflow_model(tiny_pipeline, tmp_path):
    """compose's stages in the session's one tiny `dvc repro`, then generate, predict and the MLflow model."""
    project_copy, cli_env = tiny_pipeline.root, tiny_pipeline.env
    assert "compose_evaluate" in tiny_pipeline.output

    def run(*cmd, ok=True):
        done = subprocess.run(list(cmd), cwd=project_copy, env=cli_env, capture_output=True, text=True)
        assert (done.returncode == 0) == ok, done.stderr[-3000:]
        return done
    metrics = json.loads((project_copy / "metrics/compose.json").read_text())
    for key in ("test_nll_per_frame", "val_nll_per_frame", "frame_accuracy", "independent_test_nll_per_frame",
                "repeat_test_nll_per_frame", "lstm_vs_independent_nll_per_frame_difference_ci95_low",
                "valid_midi_fraction", "in_key_ratio", "pitch_class_distance", "polyphony", "repetition_rate",
                "train_seconds", "far_test_nll_per_frame", "far_test_nll_per_frame_ci95_low",
                "far_lstm_vs_repeat_nll_per_frame_difference", "n_far_test_pieces", "test_max_melody_similarity"):
        assert key in metrics, key
    assert metrics["valid_midi_fraction"] == 1.0
    assert 0 < metrics["n_far_test_pieces"] < metrics["n_test_pieces"] and metrics["test_max_melody_similarity"] < 0.7
    assert (project_copy / "plots/compose/generated.png").is_file()
    assert len(list((project_copy / "data/compose/generated").glob("piece-*.wav"))) == 2

    pieces = []
    for name in ("a.mid", "b.mid"):
        out = run("cnnrnn", "generate", "compose", "--bars", "4", "--seed", "7", "-o", str(tmp_path / name),
                  "--wav", str(tmp_path / f"{name}.wav"))
        assert "wrote" in out.stdout
        pieces.append((tmp_path / name).read_bytes())
    assert pieces[0] == pieces[1] and (tmp_path / "a.mid.wav").read_bytes()[:4] == b"RIFF"
    (tmp_path / "text.mid").write_text("not MIDI")
    failed = run("cnnrnn", "generate", "compose", "--primer", str(tmp_path / "text.mid"), ok=False)
    assert "not a MIDI file" in failed.stderr and "Traceback" not in failed.stderr
    scored = json.loads(run("cnnrnn", "predict", "compose", str(tmp_path / "a.mid"), "--json").stdout)
    assert 0 < scored["frames"] <= 16 and scored["nll_per_frame"] > 0

    import mlflow
    import pandas as pd

    mlflow.set_tracking_uri(cli_env["MLFLOW_TRACKING_URI"])
    runs = mlflow.search_runs(experiment_names=["compose"])
    train = runs[runs["tags.cnnrnn.stage"] == "train"].iloc[0]
    model = mlflow.pyfunc.load_model(f"runs:/{train['run_id']}/model")
    answer = model.predict(pd.DataFrame({"seed": [7, 7], "bars": [4, 4]}))
    assert answer.loc[0, "midi"] == answer.loc[1, "midi"] and answer.loc[0, "midi"][:4] == b"MThd"


def test_jsb_json_comes_from_a_local_server_and_keeps_its_split(file_server, tmp_path, params):
    """`compose/data=jsb_chorales` against 127.0.0.1: JSON in the real layout, checksummed; converted to MIDI at
    fetch; prepare keeps the file's own train/valid/test split."""
    from cnnrnn.compose.data import complete_fetch, prepare
    from cnnrnn.fetching import fetch_sources

    served, url = file_server
    piece = [[60, 64, 67], [60, 64, 67], [62, 65, 69], [59, 62, 67], [60, 64, 67]] * 3
    body = json.dumps({"train": [piece, piece[::-1], piece[2:]], "valid": [piece[1:]], "test": [piece[:-1]]}).encode()
    (served / "jsb-chorales-quarter.json").write_bytes(body)
    data = compose(["compose/data=jsb_chorales"], ROOT)["compose"]["data"]
    data["source"] = {**data["source"], "base_url": url,
                      "files": {"jsb-chorales-quarter.json": f"sha256:{hashlib.sha256(body).hexdigest()}"}}
    fetch_sources(data["source"], tmp_path / "raw")
    complete_fetch({**params, "data": data}, tmp_path / "raw")
    assert len(list((tmp_path / "raw" / "midi").glob("*.mid"))) == 5
    (tmp_path / "prepared").mkdir()
    info = prepare({**params, "data": data}, tmp_path / "raw", tmp_path / "prepared")
    assert info["sizes"] == {"train": 3, "val": 1, "test": 1}


# --- no near-copies across splits (issue 26) -------------------------------------------------------------------------

def tune(steps: list[int], start: int = 60, beats: list[int] | None = None, low: int = 21) -> np.ndarray:
    """A melody (intervals ``steps`` from ``start``) over a held bass, each note ``beats`` frames long."""
    pitches = np.cumsum([start, *steps])
    beats = beats or [1] * len(pitches)
    roll = np.zeros((sum(beats), 88), np.uint8)
    frame = 0
    for pitch, length in zip(pitches, beats):
        roll[frame:frame + length, pitch - low] = 1
        frame += length
    roll[:, 36 - low] = 1
    return roll


def walk(rng, size: int, choices=(-2, -1, 1, 2, 3, -3, 4, -4)) -> list[int]:
    """Random melodic steps that keep a tune starting at 60 within an octave and a half of it."""
    steps, pitch = [], 0
    for step in rng.choice(choices, size=size).tolist():
        step = -step if abs(pitch + step) > 10 else step
        steps.append(step)
        pitch += step
    return steps


def test_melody_is_the_same_in_another_key_and_rhythm_and_unrelated_tunes_are_far():
    from cnnrnn.compose.data import melody, melody_similarity

    rng = np.random.default_rng(0)
    steps = walk(rng, 40)
    original = tune(steps)
    assert melody(tune(steps, start=65)) == melody(original)  # transposed: the same intervals
    assert melody(tune(steps, beats=rng.integers(1, 4, size=41).tolist())) == melody(original)  # other rhythm
    varied = steps.copy()
    varied[10], varied[25] = 5, -4  # two notes changed, as between two harmonizations
    others = [tune(walk(rng, 40)) for _ in range(20)]
    scores = melody_similarity([melody(original)], [melody(tune(varied))] + [melody(o) for o in others])[0]
    assert scores[0] >= 0.85 and scores[1:].max() < 0.7


def test_tune_families_under_other_bwv_numbers_stay_in_one_split():
    """30 tunes, each harmonized three times under three BWV numbers (in other keys, with a note changed): the old
    split by BWV number scattered families across train and test; now no family is split and nearest.csv's
    similarities are all below the threshold."""
    from cnnrnn.compose.data import melody, melody_similarity, nearest_training_pieces, split_pieces

    rng = np.random.default_rng(1)
    rolls = {}
    for family in range(30):
        steps = walk(rng, 30)
        for setting in range(3):
            varied = steps.copy()
            varied[setting * 7] = 5
            rolls[f"bwv{family * 3 + setting + 1}.{setting + 2}"] = tune(varied, start=55 + setting * 2)
    data = {"format": "music21_corpus", "near_copy_threshold": 0.7, "val_fraction": 0.1, "test_fraction": 0.15}
    splits = split_pieces(rolls, data, seed=0)
    owner = {n: s for s, names in splits.items() for n in names}
    for family in range(30):
        assert len({owner[f"bwv{family * 3 + k + 1}.{k + 2}"] for k in range(3)}) == 1, family
    assert all(splits.values())
    near = nearest_training_pieces(rolls, splits)
    assert max(r[2] for rows in near.values() for r in rows) < 0.7
    within = melody_similarity([melody(rolls["bwv1.2"])], [melody(rolls["bwv2.3"])])[0, 0]
    assert within >= 0.7  # the family really is one by the measure


def test_real_chorale_families_stay_together_and_prepare_checks_it(prepared):
    """The real bwv1* chorales: several tunes are set under two or three BWV numbers (113.8 and 168.6, 117.4 and
    155.5 and 177.4, ...). Every pair of pieces in different splits is below the threshold, and nearest.csv
    says so for every validation and test piece."""
    import torch

    from cnnrnn.compose.data import melody, melody_similarity
    from cnnrnn.near_copies import read_nearest

    names = {s: [n for n in torch.load(prepared / f"{s}.pt")["names"] if "@" not in n] for s in ("train", "val", "test")}
    rolls = {n: r.numpy() for s in names for n, r in zip(torch.load(prepared / f"{s}.pt")["names"],
                                                        torch.load(prepared / f"{s}.pt")["rolls"]) if "@" not in n}
    owner = {n: s for s, v in names.items() for n in v}
    ordered = sorted(rolls)
    scores = melody_similarity([melody(rolls[n]) for n in ordered], [melody(rolls[n]) for n in ordered])
    linked = [(a, b) for i, a in enumerate(ordered) for j, b in enumerate(ordered) if i < j and scores[i, j] >= 0.7
              and a.split(".")[0] != b.split(".")[0]]
    assert len(linked) >= 10  # the data under test has tune families across BWV numbers
    assert all(owner[a] == owner[b] for a, b in linked), [(a, b) for a, b in linked if owner[a] != owner[b]]
    for split in ("val", "test"):
        nearest = read_nearest(prepared / "nearest.csv", split)
        assert set(nearest) == set(names[split]) and max(nearest.values()) < 0.7
    info = json.loads((prepared / "info.json").read_text())
    assert info["nearest_training_melody"]["test"]["at_or_above_threshold"] == 0


def test_a_file_of_more_than_max_parts_is_skipped_and_named(tmp_path, params):
    import pretty_midi

    from cnnrnn.compose.data import read_folder

    folder = tmp_path / "midi"
    folder.mkdir()
    for parts in (4, 8):
        midi = pretty_midi.PrettyMIDI()
        for part in range(parts):
            instrument = pretty_midi.Instrument(program=0)
            instrument.notes = [pretty_midi.Note(80, 48 + 5 * part, t * 0.5, t * 0.5 + 0.5) for t in range(16)]
            midi.instruments.append(instrument)
        midi.write(str(folder / f"choir{parts}.mid"))
    rolls, skipped, _ = read_folder(folder, {**params["data"], "max_parts": 4})
    assert list(rolls) == ["choir4"] and "8 parts (max_parts 4)" in skipped["choir8.mid"]
    rolls, skipped, _ = read_folder(folder, {**params["data"], "max_parts": None})
    assert sorted(rolls) == ["choir4", "choir8"]


def test_the_repeat_baselines_frame_accuracy_is_that_of_copying_the_previous_frame():
    """Thresholding the repeat mix at 0.5 with a weight under 0.5 predicted nothing (accuracy 0.000); the baseline's
    prediction is the previous frame, whatever its weight."""
    from cnnrnn.compose.evaluate import baseline_scores
    from cnnrnn.compose.measures import pitch_frequencies, totals

    roll = scale_roll()  # half notes: every other frame repeats the one before
    scores = baseline_scores([roll], pitch_frequencies([roll]), repeat_weight=0.2)
    copied = totals(scores["repeat"])["frame_accuracy"]
    assert 0.3 < copied < 1.0
    assert totals(baseline_scores([roll], pitch_frequencies([roll]), repeat_weight=0.9)["repeat"])["frame_accuracy"] == copied
