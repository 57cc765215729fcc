"""Next-word suggestions and generated text from the trained keyboard models (torch only)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from cnnrnn.errors import UserError
from cnnrnn.keyboard.network import build_network
from cnnrnn.model_file import read_model_file, rebuild
from cnnrnn.text_models import model_files, text_inputs
from cnnrnn.text import PAD, UNK, Vocabulary, require_text, tokenize_words


class KeyboardModel:
    """One trained language model (``unit`` word or char) with its vocabulary."""

    def __init__(self, path: Path):
        saved = read_model_file(path, "keyboard", "dvc repro keyboard_train")
        self.name: str = saved["model_name"]
        self.unit: str = saved["unit"]
        self.vocabulary = Vocabulary(saved["vocabulary"])
        self.network = rebuild(path, saved, lambda s: build_network(s["model_cfg"], len(self.vocabulary)),
                               "dvc repro keyboard_train")
        self.punctuation: str = saved["punctuation"]

    def encode(self, text: str) -> list[int]:
        if self.unit == "word":
            return self.vocabulary.encode(tokenize_words(text, self.punctuation))
        return [self.vocabulary.index.get(c, 1) for c in text]

    @torch.no_grad()
    def next_log_probs(self, ids: list[int]) -> torch.Tensor:
        """Log-probabilities of the next token after ``ids`` (read from an empty state), (V,)."""
        outputs, _ = self.network(torch.tensor([ids or [1]]))
        return self.network.log_probs(outputs[:, -1])[0]

    def suggest(self, text: str, count: int = 3) -> list[tuple[str, float]]:
        """The ``count`` likeliest next words (never ``<unk>`` or punctuation) with their probabilities."""
        logp = self.next_log_probs(self.encode(require_text(text, "the text typed so far", "To be or not to"))).clone()
        logp[[self.vocabulary.index[PAD], self.vocabulary.index[UNK]]] = float("-inf")
        if self.unit == "word":  # a keyboard suggests words; punctuation is typed
            logp[[i for i, t in enumerate(self.vocabulary.tokens) if not t[:1].isalnum()]] = float("-inf")
        top = logp.topk(count)
        return [(self.vocabulary.tokens[int(i)], round(float(p), 4)) for p, i in zip(top.values.exp(), top.indices)]

    @torch.no_grad()
    def generate(self, prompt: str, length: int, temperature: float, seed: int) -> str:
        """``prompt`` followed by ``length`` sampled tokens (characters or words)."""
        if not temperature > 0:  # also refuses nan
            raise UserError(f"--temperature must be a number above 0, not {temperature}")
        generator = torch.Generator().manual_seed(seed)
        ids = self.encode(require_text(prompt, "the prompt", "ROMEO:")) or [self.vocabulary.index[UNK]]
        outputs, state = self.network(torch.tensor([ids]))
        pieces = []
        banned = [self.vocabulary.index[PAD], self.vocabulary.index[UNK]]
        for _ in range(length):
            logits = self.network.log_probs(outputs[:, -1])[0] / temperature
            logits[banned] = float("-inf")
            token = int(torch.multinomial(torch.softmax(logits, dim=0), 1, generator=generator))
            pieces.append(self.vocabulary.tokens[token])
            outputs, state = self.network(torch.tensor([[token]]), state)
        if self.unit == "char":
            return prompt + "".join(pieces)
        return prompt + "".join(p if not p[:1].isalnum() else " " + p for p in pieces)


def load(model_dir: Path, names: list[str] | None = None) -> dict[str, KeyboardModel]:
    """``models/keyboard``: each ``<name>/model.pt`` under it (every one, or those of ``names``), or one model directory."""
    return {m.name: m for m in (KeyboardModel(f) for f in model_files(model_dir, "keyboard", names))}


def word_model(models: dict[str, KeyboardModel]) -> KeyboardModel:
    found = [m for m in models.values() if m.unit == "word"]
    if not found:
        raise UserError("no word-level keyboard model is trained; add one to keyboard.models (keyboard/model@keyboard.models.word=word_lstm)")
    return found[0]


def generator_model(models: dict[str, KeyboardModel], name: str | None) -> KeyboardModel:
    if name is not None:
        if name not in models:
            raise UserError(f"no keyboard model {name!r}; trained: {', '.join(models)}")
        return models[name]
    chars = [m for m in models.values() if m.unit == "char"]
    return chars[0] if chars else next(iter(models.values()))


def generate(model_dir: Path, options: dict) -> str:
    """``cnnrnn generate keyboard``: ``options['prompt']`` continued by ``length`` sampled tokens of the chosen
    model (``options['model']``, default the character model), at ``temperature``, seeded by ``seed``."""
    model = generator_model(load(model_dir), options.get("model"))
    return model.generate(options["prompt"], options["length"], options["temperature"], options["seed"])


def predict_frame(models: dict[str, KeyboardModel], frame):
    """MLflow pyfunc: a column of texts -> suggestion_1..3 and probability_1..3 for the next word
    (for a character model alone: the next character)."""
    import pandas as pd

    words = [m for m in models.values() if m.unit == "word"]
    model = words[0] if words else next(iter(models.values()))
    rows = []
    for text in text_inputs(frame):
        row = {"text": text}
        for rank, (word, p) in enumerate(model.suggest(text), start=1):
            row[f"suggestion_{rank}"], row[f"probability_{rank}"] = word, p
        rows.append(row)
    return pd.DataFrame(rows)


def describe(models: dict[str, KeyboardModel], text: str, top=None, as_json: bool = False, output=None) -> str:
    """``cnnrnn predict keyboard TEXT``: the next-word suggestions."""
    suggestions = word_model(models).suggest(text, top or 3)
    if as_json:
        return json.dumps({"text": text, "suggestions": [{"word": w, "probability": p} for w, p in suggestions]})
    return f"{text!r} -> " + " | ".join(f"{w} ({p:.3f})" for w, p in suggestions)
