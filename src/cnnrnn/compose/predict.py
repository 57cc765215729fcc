"""Generate new pieces and score MIDI files with the trained model (torch, pretty_midi: no Lightning, no MLflow).

- ``cnnrnn generate compose --bars 16 --seed 7 -o piece.mid [--wav piece.wav] [--temperature 1.0]
  [--primer start.mid]``: a new piece, the same for the same seed;
- ``cnnrnn predict compose piece.mid``: how probable the model finds a piece (NLL per frame, nats);
- the MLflow model: a DataFrame with ``seed`` (and optional ``primer``, MIDI bytes; ``bars``,
  ``temperature``) -> ``midi`` (bytes) per row.
"""

from __future__ import annotations

import io
import json
import wave
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnrnn.compose.midi_files import NotMidi, read_roll, write_midi
from cnnrnn.compose.measures import piece_scores, totals
from cnnrnn.compose.network import FrameLSTM, predicted_frames, sample
from cnnrnn.errors import UserError
from cnnrnn.model_file import read_model_file, rebuild

RETRAIN = "dvc repro compose_train"


class LoadedComposer:
    def __init__(self, model_dir: Path):
        path = Path(model_dir) / "model.pt"
        saved = read_model_file(path, "compose", RETRAIN)
        self.pitches, self.pitch_low = int(saved["pitches"]), int(saved["pitch_low"])
        self.steps_per_quarter = int(saved["steps_per_quarter"])
        self.defaults = dict(saved["generate"])
        self.network: FrameLSTM = rebuild(path, saved, lambda s: FrameLSTM(s["model_cfg"], s["pitches"]), RETRAIN)

    def read(self, path: Path) -> np.ndarray:
        """A MIDI file the user named -> its roll in the model's pitch range; a clear error if it is not MIDI."""
        path = Path(path)
        if not path.is_file():
            raise UserError(f"{path}: no such file")
        try:
            return read_roll(path, self.steps_per_quarter, self.pitch_low, self.pitch_low + self.pitches - 1)
        except NotMidi as err:
            raise UserError(f"{err}; give a standard MIDI file (.mid)") from err

    @torch.no_grad()
    def probabilities(self, roll: np.ndarray) -> np.ndarray:
        """(T, P) the model's probability of each pitch in each frame, given the frames before it (and, for a
        ``nade`` frame output, the true pitches below it in its frame): their log-likelihoods sum to the piece's."""
        logits, _ = self.network(torch.from_numpy(np.asarray(roll, dtype=np.float32))[None])
        return torch.sigmoid(logits[0]).numpy()

    def predictions(self, roll: np.ndarray) -> np.ndarray:
        """(T, P) bool: each frame the model predicts from the true frames before it, a pitch on where its probability
        is above 0.5 (with a NADE output: greedily, pitch by pitch from the lowest, given the pitches it predicted
        below): the frames Bay et al.'s frame accuracy counts."""
        return predicted_frames(self.network, torch.from_numpy(np.asarray(roll, dtype=np.uint8))).numpy()

    def scores(self, roll: np.ndarray) -> dict[str, float]:
        """:func:`piece_scores` of one piece: its exact NLL and the frame-accuracy counts of :meth:`predictions`."""
        return piece_scores(roll, self.probabilities(roll), self.predictions(roll))

    def frames_for(self, bars: int) -> int:
        return bars * self.defaults["beats_per_bar"] * self.steps_per_quarter

    def compose(self, seed: int, bars: int | None = None, temperature: float | None = None,
                primer: np.ndarray | None = None) -> np.ndarray:
        """A new roll of ``bars`` bars; the same seed (and primer) gives the same roll."""
        generator = torch.Generator().manual_seed(int(seed))
        frames = self.frames_for(int(bars or self.defaults["bars"]))
        primer_t = None if primer is None else torch.from_numpy(np.asarray(primer[:frames], dtype=np.uint8))
        return sample(self.network, frames, generator, float(temperature or self.defaults["temperature"]),
                      primer_t).numpy()

    def midi(self, roll: np.ndarray) -> bytes:
        return write_midi(roll, self.pitch_low, self.steps_per_quarter, tempo=float(self.defaults["tempo"]))


def load(model_dir: Path) -> LoadedComposer:
    return LoadedComposer(model_dir)


def wav_bytes(midi_bytes: bytes, sample_rate: int = 16000) -> bytes:
    """A WAV rendering of MIDI bytes: with fluidsynth present (the ``pyfluidsynth`` package and its library), through
    the General MIDI soundfont pretty_midi's wheel ships (``TimGM6mb.sf2``); otherwise pretty_midi's own synthesis
    (sine waves; needs nothing else)."""
    from cnnrnn.compose.midi_files import parse_midi

    midi = parse_midi(midi_bytes, "piece")
    try:
        audio = midi.fluidsynth(fs=sample_rate)  # pretty_midi's bundled soundfont by default
    except Exception:  # ImportError without pyfluidsynth; OSError without the fluidsynth library
        audio = midi.synthesize(fs=sample_rate)
    peak = float(np.abs(audio).max()) or 1.0
    samples = (audio / peak * 0.8 * 32767).astype(np.int16)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()


def describe(model: LoadedComposer, path, top=None, as_json: bool = False, output=None) -> str:
    """``cnnrnn predict compose piece.mid``: the NLL per frame the model gives the piece."""
    roll = model.read(path)
    figures = totals([model.scores(roll)])
    answer = {"file": str(path), "frames": len(roll), "nll_per_frame": round(figures["nll_per_frame"], 3),
              "frame_accuracy": round(figures["frame_accuracy"], 3)}
    if as_json:
        return json.dumps(answer)
    return (f"{path}: {len(roll)} frames; NLL {answer['nll_per_frame']:.3f} nats per frame, "
            f"frame accuracy {answer['frame_accuracy']:.3f}")


def generate(model_dir: Path, options: dict[str, Any]) -> str:
    """``cnnrnn generate compose``: write the piece (and its WAV) and say what was written."""
    model = load(model_dir)
    primer = model.read(options["primer"]) if options.get("primer") else None
    roll = model.compose(options["seed"], options.get("bars"), options.get("temperature"), primer)
    midi = model.midi(roll)
    output = Path(options.get("output") or f"piece-{options['seed']}.mid")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(midi)
    lines = [f"wrote {output}: {len(roll)} frames ({len(roll) // (model.defaults['beats_per_bar'] * model.steps_per_quarter)}"
             f" bars), {int(np.diff(np.vstack([np.zeros((1, roll.shape[1])), roll]), axis=0).clip(0).sum())} notes"]
    if options.get("wav"):
        Path(options["wav"]).write_bytes(wav_bytes(midi))
        lines.append(f"wrote {options['wav']}")
    return "\n".join(lines)


def predict_frame(model: LoadedComposer, frame):
    """MLflow pyfunc: rows with ``seed`` (optional ``primer`` MIDI bytes, ``bars``, ``temperature``) -> ``midi`` bytes."""
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        frame = pd.DataFrame({"seed": list(np.atleast_1d(frame))})
    if "seed" not in frame.columns:
        raise UserError("the compose model takes a DataFrame with a 'seed' column (and optional 'primer', 'bars')")
    out = []
    for _, row in frame.iterrows():
        primer = None
        if isinstance(row.get("primer"), (bytes, bytearray)) and row.get("primer"):
            import tempfile

            with tempfile.NamedTemporaryFile(suffix=".mid") as tmp:
                tmp.write(row["primer"])
                tmp.flush()
                primer = model.read(Path(tmp.name))
        bars = row.get("bars") if "bars" in frame.columns else None
        temperature = row.get("temperature") if "temperature" in frame.columns else None
        out.append(model.midi(model.compose(int(row["seed"]), bars, temperature, primer)))
    return pd.DataFrame({"midi": out})
