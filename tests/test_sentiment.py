"""sentiment at a small size: the real vaderSentiment sdist, real templates, the real networks and command line."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from collections import Counter
from pathlib import Path

import pytest
import torch

from cnnrnn.config import compose
from cnnrnn.errors import UserError
from cnnrnn.fetching import archive_member, fetch_pip_members, fetch_source, verify_checksum
from cnnrnn.sentiment.contrast import CONTRAST, TRAINING, all_pairs, contrast_pairs, slot_words, training_sentences
from cnnrnn.sentiment.network import build_network
from cnnrnn.sentiment.sentences import collate_sentences
from cnnrnn.text import Vocabulary, tokenize_words
from conftest import fast_dev_run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def params() -> dict:
    composed = compose([], ROOT)
    return {**composed["sentiment"], "seed": composed["seed"]}


@pytest.fixture(scope="session")
def prepared(tmp_path_factory, params) -> Path:
    """The real movie snippets and lexicon, fetched from the pinned sdist and prepared."""
    from cnnrnn.sentiment.data import prepare

    base = tmp_path_factory.mktemp("snippets")
    fetch_source(params["data"]["source"], base / "raw")
    prepare(params, base / "raw", base / "prepared")
    return base / "prepared"


# ----------------------------------------------------------------------------- contrast set


def test_contrast_pairs_are_permutations_with_opposite_labels():
    pairs = contrast_pairs(300, seed=42)
    assert len(pairs) == 300 and len(all_pairs(CONTRAST)) >= 200
    for (first, label_first), (second, label_second) in pairs:
        assert Counter(tokenize_words(first)) == Counter(tokenize_words(second)), (first, second)
        assert first != second and {label_first, label_second} == {0, 1}
    assert len({s for pair in pairs for s, _ in pair}) == 600


def test_training_templates_and_words_are_disjoint_from_the_contrast_set():
    assert not slot_words(CONTRAST) & slot_words(TRAINING)
    assert not {t for t, _ in CONTRAST.templates} & {t for t, _ in TRAINING.templates}
    contrast_sentences = {s for pair in all_pairs(CONTRAST) for s, _ in pair}
    added = training_sentences(1000, seed=1)
    assert len(added) == 1000 and not contrast_sentences & {s for s, _ in added}
    for (a, la), (b, lb) in zip(added[::2], added[1::2]):  # whole pairs: both orders are seen in training
        assert Counter(tokenize_words(a)) == Counter(tokenize_words(b)) and la != lb


def test_bag_of_words_cannot_tell_a_pair_apart():
    """Same words, same score: the pair accuracy of a bag of words is 0 by construction."""
    net = build_network({"kind": "bow", "binary": True}, 50)
    torch.nn.init.normal_(net.linear.weight)
    ids = torch.tensor([[5, 7, 9, 11], [9, 7, 5, 11]])
    scores = net(ids, torch.tensor([4, 4]))
    assert torch.allclose(scores[0], scores[1])


# ----------------------------------------------------------------------------- data


def nested_sdist(tmp_path: Path, text: bytes) -> Path:
    """An sdist laid out like vaderSentiment's: a tar.gz inside the tar.gz holds the data file."""
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w:gz") as tf:
        info = tarfile.TarInfo("hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt")
        info.size = len(text)
        tf.addfile(info, io.BytesIO(text))
    sdist = tmp_path / "vaderSentiment-3.3.2.tar.gz"
    with tarfile.open(sdist, "w:gz") as tf:
        info = tarfile.TarInfo("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz")
        info.size = len(inner.getvalue())
        tf.addfile(info, io.BytesIO(inner.getvalue()))
    return sdist


def test_nested_sdist_member_is_extracted_and_checked(tmp_path):
    import hashlib

    text = b"1\t2.5\tA gorgeous, witty film.\n2\t-3.0\tDull and long.\n"
    member = "additional_resources/hutto_ICWSM_2014.tar.gz!hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
    with archive_member(nested_sdist(tmp_path, text), member) as f:
        (tmp_path / "snippets.txt").write_bytes(f.read())
    assert verify_checksum(tmp_path / "snippets.txt", "sha256:" + hashlib.sha256(text).hexdigest(), "snippets")
    with pytest.raises(UserError, match="checksum mismatch for snippets"):
        verify_checksum(tmp_path / "snippets.txt", "sha256:" + "0" * 64, "snippets")
    with pytest.raises(UserError, match="has no member"):
        with archive_member(nested_sdist(tmp_path, text), "additional_resources/hutto_ICWSM_2014.tar.gz!nope.txt"):
            pass


def test_real_sdist_member_with_a_wrong_checksum_is_refused(tmp_path, params):
    """The pinned sdist from the package index; a wrong pin names the file and leaves nothing behind."""
    member = params["data"]["source"]["members"]["movieReviewSnippets_GroundTruth.txt"]
    with pytest.raises(UserError, match="checksum mismatch"):
        fetch_pip_members("vaderSentiment==3.3.2", {"snippets.txt": (member, "sha256:" + "0" * 64)}, tmp_path, sdist=True)
    assert list(tmp_path.iterdir()) == []


def test_prepared_snippets_are_split_and_encoded(prepared):
    import json

    info = json.loads((prepared / "info.json").read_text())
    assert info["sizes"]["test"] == 2009 and info["sizes"]["contrast"] == 600
    assert sum(info["sizes"][s] for s in ("train", "val", "test")) - info["order_sentences_in_train"] == 10043
    assert info["contrast_words_not_in_vocabulary"] == []
    vocab = Vocabulary.load(prepared / "vocab.json")
    assert vocab.tokens[:2] == ["<pad>", "<unk>"] and vocab.encode(["zzzunseen"]) == [1]
    test = torch.load(prepared / "test.pt")
    assert int(test["lengths"].sum()) == len(test["ids"]) and set(test["labels"].tolist()) == {0, 1}
    lexicon = torch.load(prepared / "lexicon.pt")
    assert lexicon[vocab.index["good"]] > 0 > lexicon[vocab.index["bad"]]


# ----------------------------------------------------------------------------- networks


@pytest.mark.parametrize("cell,bidirectional", [("lstm", True), ("gru", False)])
def test_packed_batch_equals_one_sentence_at_a_time(cell, bidirectional):
    torch.manual_seed(0)
    net = build_network({"kind": "rnn", "cell": cell, "bidirectional": bidirectional, "embedding_dim": 8, "hidden": 6,
                         "layers": 2, "dropout": 0.0, "lexicon_feature": True}, 30).eval()
    net.features.lexicon.uniform_(-1, 1)
    sentences = [torch.randint(2, 30, (n,)) for n in (7, 1, 4, 12)]
    ids, lengths, _ = collate_sentences([(s, torch.tensor(0)) for s in sentences])
    batched = net(ids, lengths)
    alone = torch.stack([net(s[None], torch.tensor([len(s)]))[0] for s in sentences])
    assert torch.allclose(batched, alone, atol=1e-6)


def test_window_sees_only_the_last_tokens():
    net = build_network({"kind": "window", "window": 3, "embedding_dim": 4, "hidden": 5, "dropout": 0.0,
                         "lexicon_feature": False}, 20)
    ids = torch.tensor([[4, 5, 6, 7, 0], [8, 9, 0, 0, 0]])
    assert net.last_tokens(ids, torch.tensor([4, 2])).tolist() == [[5, 6, 7], [0, 8, 9]]


# ----------------------------------------------------------------------------- training, prediction


@pytest.mark.parametrize("model", ["bow", "window", "rnn"])
def test_fast_dev_run_of_every_model(prepared, params, model):
    fast_dev_run("sentiment", params, prepared, model)


def test_predict_prints_every_model_and_rejects_empty_text(tmp_path, prepared, params):
    from cnnrnn.sentiment.model import make_datamodule, make_module, save_model
    from cnnrnn.paths import model_params

    for model in ("bow", "rnn"):
        p = model_params(params, model)
        datamodule = make_datamodule(p, prepared)
        (tmp_path / "models" / model).mkdir(parents=True)
        save_model(make_module(p, datamodule), tmp_path / "models" / model, datamodule, p)
    cmd = [sys.executable, "-m", "cnnrnn.cli", "predict", "sentiment", "--model-dir", str(tmp_path / "models")]
    done = subprocess.run(cmd + ["The food was good, not bad at all"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "bow:" in done.stdout and "rnn:" in done.stdout and "p(positive)" in done.stdout
    done = subprocess.run(cmd + ["   "], capture_output=True, text=True)
    assert done.returncode == 1 and "empty" in done.stderr and "Traceback" not in done.stderr


def test_corrupt_or_foreign_model_file_is_a_clear_error(tmp_path):
    from cnnrnn.sentiment.predict import load

    (tmp_path / "rnn").mkdir()
    (tmp_path / "rnn" / "model.pt").write_bytes(b"not a model at all")
    with pytest.raises(UserError, match="not a readable model file"):
        load(tmp_path)
    torch.save({"app": "keyboard"}, tmp_path / "rnn" / "model.pt")
    with pytest.raises(UserError, match="not a cnnrnn sentiment model"):
        load(tmp_path)
