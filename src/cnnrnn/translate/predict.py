"""Translate your own sentences with the trained model (torch only: no Lightning, no MLflow).

``cnnrnn predict translate "Save the file"`` prints the translation; ``--beam N`` decodes with a beam
of N hypotheses (default: ``translate.predict.beam_width`` as trained; 1 is greedy);
``--show-attention`` adds the alignment: for every output piece, the source piece it attended to most.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch

from cnnrnn.model_file import read_model_file, rebuild
from cnnrnn.text import require_text
from cnnrnn.text_models import text_inputs
from cnnrnn.translate.data import normalize
from cnnrnn.translate.network import Seq2Seq, beam_search, greedy_decode
from cnnrnn.translate.tokens import Tokenizer

RETRAIN = "dvc repro translate_train"


class LoadedTranslator:
    """The network, its tokenizer and its limits (``max_tokens`` per sentence, ``beam_width``)."""

    def __init__(self, model_dir: Path):
        path = Path(model_dir) / "model.pt"
        saved = read_model_file(path, "translate", RETRAIN)
        self.tokenizer = Tokenizer.from_state(saved["tokenizer"])
        self.cfg = dict(saved["model_cfg"])
        self.network: Seq2Seq = rebuild(path, saved, lambda s: Seq2Seq(s["model_cfg"], s["vocabulary_size"]), RETRAIN)
        self.max_tokens = int(self.cfg["max_tokens"])
        self.beam_width = int(self.cfg.get("beam_width", 1))
        self.dataset, self.target = saved.get("dataset"), saved.get("target")

    def source_ids(self, text: str) -> tuple[list[int], bool]:
        """Token ids of a source sentence, cut to ``max_tokens``; and whether it was cut."""
        # normalized as training saw its text: plain apostrophes and spaces
        ids = self.tokenizer.encode(normalize(require_text(text, "a sentence to translate", "Save the file")))
        if not ids:
            ids = [1]
        return ids[: self.max_tokens], len(ids) > self.max_tokens

    def translate(self, texts: list[str], beam: int | None = None, batch_size: int = 64) -> list[dict[str, Any]]:
        """[{"text", "translation", "source_pieces", "target_pieces", "attention" (T, S), "truncated"}] per text."""
        beam = self.beam_width if beam is None else beam
        encoded = [self.source_ids(t) for t in texts]
        rows = []
        if beam <= 1:
            for start in range(0, len(texts), batch_size):
                chunk = [ids for ids, _ in encoded[start:start + batch_size]]
                source = torch.nn.utils.rnn.pad_sequence([torch.tensor(i) for i in chunk], batch_first=True)
                outputs, weights = greedy_decode(self.network, source, torch.tensor([len(i) for i in chunk]),
                                                 self.max_length(max(map(len, chunk))))
                # each sentence's own length limit, as beam search and a batch of one have it
                rows += [(out[:self.max_length(len(ids))], w[:self.max_length(len(ids))])
                         for ids, out, w in zip(chunk, outputs, weights)]
        else:
            for ids, _ in encoded:
                rows.append(beam_search(self.network, torch.tensor(ids), beam, self.max_length(len(ids)),
                                        float(self.cfg.get("length_penalty", 1.0))))
        return [{"text": text, "translation": self.tokenizer.decode(out), "truncated": cut,
                 "source_pieces": self.tokenizer.pieces(ids), "target_pieces": self.tokenizer.pieces(out),
                 "attention": weights}
                for text, (ids, cut), (out, weights) in zip(texts, encoded, rows)]

    def max_length(self, source_length: int) -> int:
        """Output tokens at most: twice the source and a few more, within ``max_tokens``."""
        return min(self.max_tokens, 2 * source_length + 10)


def load(model_dir: Path) -> LoadedTranslator:
    return LoadedTranslator(model_dir)


def attention_table(row: dict[str, Any]) -> str:
    """One line per output piece: the piece, the source piece it attended to most, and that weight."""
    lines = [f"  {'output':<16} {'attends to':<16} weight"]
    for piece, weights in zip(row["target_pieces"], row["attention"]):
        best = int(weights.argmax())
        lines.append(f"  {piece:<16} {row['source_pieces'][best]:<16} {float(weights[best]):.2f}")
    return "\n".join(lines)


def describe(model: LoadedTranslator, text: str, top=None, as_json: bool = False, output=None, beam: int | None = None,
             show_attention: bool = False) -> str:
    """``cnnrnn predict translate TEXT``: the translation (with ``show_attention``, the alignment as a table)."""
    row = model.translate([text], beam)[0]
    if row["truncated"]:
        print(f"cnnrnn: note: the sentence is longer than {model.max_tokens} tokens; only its first {model.max_tokens} "
              f"were translated", file=sys.stderr)
    if as_json:
        answer = {"text": text, "translation": row["translation"], "truncated": row["truncated"]}
        if show_attention:
            answer["attention"] = {"source": row["source_pieces"], "output": row["target_pieces"],
                                   "weights": [[round(float(w), 3) for w in r] for r in row["attention"]]}
        return json.dumps(answer, ensure_ascii=False)
    if not show_attention:
        return row["translation"]
    return f"{row['translation']}\n{attention_table(row)}"


def predict_frame(model: LoadedTranslator, frame):
    """MLflow pyfunc: a column of English strings -> a DataFrame with their ``translation``."""
    import pandas as pd

    texts = [require_text(t, "a sentence to translate", "Save the file") for t in text_inputs(frame)]
    return pd.DataFrame({"translation": [r["translation"] for r in model.translate(texts)]})
