"""MIDI files <-> piano rolls, and the conversions fetch makes so that prepare always reads MIDI.

- :func:`read_roll`: a MIDI file -> a piano roll (frames, pitches) of 0/1, quantized to ``steps_per_quarter``
  frames a quarter note (from the file's own ticks per quarter, so tempo does not matter). A file that is
  not readable MIDI raises :class:`NotMidi` (callers list and skip it in a folder, or stop with a clear
  error for a file the user named).
- :func:`write_midi`: a piano roll -> MIDI bytes (one piano track; a held pitch is one note).
- :func:`export_corpus_midi`: music21 corpus files (MusicXML from the pinned wheel) -> MIDI files.
- :func:`chords_to_midi`: the JSON form of JSB Chorales (pieces as lists of chords) -> MIDI files.

Needs pretty_midi (and music21 for the corpus export only); no Lightning, no MLflow.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np


class NotMidi(ValueError):
    """The bytes are not a MIDI file pretty_midi can read, or hold no notes."""


def parse_midi(data: bytes, name: str):
    """MIDI bytes -> a ``pretty_midi.PrettyMIDI``; :class:`NotMidi` with the reason otherwise."""
    import pretty_midi

    if not data:
        raise NotMidi(f"{name}: empty file")
    if not data.startswith(b"MThd"):
        raise NotMidi(f"{name}: not a MIDI file (no MThd header)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pretty_midi warns about odd meta events in real files
            return pretty_midi.PrettyMIDI(io.BytesIO(data))
    except Exception as err:  # mido raises several kinds (EOFError, OSError, ValueError, KeyError) on broken files
        raise NotMidi(f"{name}: unreadable MIDI ({type(err).__name__}: {str(err)[:80]})") from err


def count_parts(midi) -> int:
    """How many parts (non-drum tracks with notes) a ``pretty_midi.PrettyMIDI`` has: 4 for a chorale in SATB, 8 for
    a double chorus."""
    return sum(1 for inst in midi.instruments if inst.notes and not inst.is_drum)


def read_roll(path: Path, steps_per_quarter: int, pitch_low: int, pitch_high: int, midi=None) -> np.ndarray:
    """A MIDI file -> (frames, pitch_high - pitch_low + 1) uint8: 1 where a pitch sounds in a frame.

    A note covers the frames from its quantized start to its quantized end (at least one frame). Drums are
    left out; pitches outside [pitch_low, pitch_high] are folded in by octaves. ``midi``: the file already parsed.
    """
    midi = midi if midi is not None else parse_midi(Path(path).read_bytes(), Path(path).name)
    notes = [n for inst in midi.instruments if not inst.is_drum for n in inst.notes]
    if not notes:
        raise NotMidi(f"{Path(path).name}: no notes")
    per_tick = steps_per_quarter / midi.resolution
    spans = []
    for note in notes:
        start = int(round(midi.time_to_tick(note.start) * per_tick))
        end = max(start + 1, int(round(midi.time_to_tick(note.end) * per_tick)))
        pitch = note.pitch
        while pitch < pitch_low:
            pitch += 12
        while pitch > pitch_high:
            pitch -= 12
        spans.append((start, end, pitch - pitch_low))
    first = min(s for s, _, _ in spans)
    roll = np.zeros((max(e for _, e, _ in spans) - first, pitch_high - pitch_low + 1), dtype=np.uint8)
    for start, end, pitch in spans:
        roll[start - first:end - first, pitch] = 1
    return roll


def write_midi(roll: np.ndarray, pitch_low: int, steps_per_quarter: int, tempo: float = 90.0,
               program: int = 0) -> bytes:
    """(frames, pitches) 0/1 -> MIDI bytes; a pitch held over consecutive frames is one note."""
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    instrument = pretty_midi.Instrument(program=program)
    seconds = 60.0 / tempo / steps_per_quarter
    roll = np.asarray(roll, dtype=np.uint8)
    padded = np.vstack([np.zeros((1, roll.shape[1]), np.uint8), roll, np.zeros((1, roll.shape[1]), np.uint8)])
    changes = np.diff(padded.astype(np.int8), axis=0)  # +1 where a note starts, -1 one past its end
    for pitch in range(roll.shape[1]):
        starts, ends = np.flatnonzero(changes[:, pitch] == 1), np.flatnonzero(changes[:, pitch] == -1)
        for start, end in zip(starts, ends):
            instrument.notes.append(pretty_midi.Note(velocity=80, pitch=pitch_low + pitch, start=start * seconds,
                                                     end=end * seconds))
    midi.instruments.append(instrument)
    buffer = io.BytesIO()
    midi.write(buffer)
    return buffer.getvalue()


def valid_midi(data: bytes) -> bool:
    """Re-parsed by both pretty_midi and mido."""
    import mido

    try:
        parse_midi(data, "generated")
        mido.MidiFile(file=io.BytesIO(data))
        return True
    except Exception:
        return False


def export_corpus_midi(archive: Path, members: list[str], out: Path) -> dict[str, str]:
    """Each MusicXML member of the wheel ``archive`` -> ``out/<name>.mid`` through music21; {member: error} of those
    that did not convert (skipped, listed)."""
    import tempfile

    import music21

    from cnnrnn.fetching import archive_member

    failed = {}
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cnnrnn-corpus-") as tmp:
        for member in members:
            name = Path(member).name
            local = Path(tmp) / name
            with archive_member(archive, member) as src:
                local.write_bytes(src.read())
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    score = music21.converter.parse(str(local))
                    score.write("midi", fp=str(out / f"{name.rsplit('.', 1)[0]}.mid"))
            except Exception as err:  # music21 raises many kinds on the odd corpus file
                failed[member] = f"{type(err).__name__}: {str(err)[:80]}"
    return failed


def chords_to_midi(pieces: list[list[list[int]]], steps_per_quarter: int, tempo: float = 90.0) -> list[bytes]:
    """JSB Chorales' JSON form (each piece a list of chords, each chord a list of MIDI pitches, one per frame of
    ``steps_per_quarter``) -> MIDI bytes per piece."""
    out = []
    for piece in pieces:
        pitches = [p for chord in piece for p in chord]
        low = min(pitches) if pitches else 60
        roll = np.zeros((len(piece), (max(pitches) if pitches else 60) - low + 1), np.uint8)
        for t, chord in enumerate(piece):
            for p in chord:
                roll[t, int(p) - low] = 1
        out.append(write_midi(roll, low, steps_per_quarter, tempo))
    return out
