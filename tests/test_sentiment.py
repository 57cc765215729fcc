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
from cnnrnn.near_copies import check_no_near_copies
from cnnrnn.sentiment.contrast import (CONTRAST_SETS, EVALUATION_WORDS, SHAPE_THRESHOLD, TEMPLATE_GROUPS,
                                      TEST_TEMPLATES, TRAINING_TEMPLATES, TRAINING_WORDS, adjective_heuristic,
                                      contrast_pairs, lexicon_adjectives, nearest_shapes, shape, shared_shapes,
                                      slot_words, training_sentences, training_words)
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


@pytest.mark.parametrize("name", list(CONTRAST_SETS))
def test_contrast_pairs_are_permutations_with_opposite_labels_and_balanced_templates(name):
    pairs = contrast_pairs(name, 600, seed=42)
    assert 360 <= len(pairs) <= 600  # the same number from each template: seen 370 templates of one pair each
    for _, ((first, label_first), (second, label_second)) in pairs:
        assert Counter(tokenize_words(first)) == Counter(tokenize_words(second)), (first, second)
        assert first != second and {label_first, label_second} == {0, 1}
    assert len({s for _, pair in pairs for s, _ in pair}) == 2 * len(pairs)
    per_template = Counter(t for t, _ in pairs)
    assert len(set(per_template.values())) == 1  # as many pairs from each template
    templates = [t for t, _ in pairs]
    assert sum(a != b for a, b in zip(templates, templates[1:])) == len(per_template) - 1  # each template's together
    follows = dict(CONTRAST_SETS[name])
    assert Counter(follows[t] for t in per_template) == {"first": len(per_template) // 2, "second": len(per_template) // 2}


@pytest.mark.parametrize("name", list(CONTRAST_SETS))
def test_the_last_and_the_first_adjective_heuristics_score_half_of_every_contrast_set(name):
    """Balanced: a model that reads only positions gets 0.5 of the pairs (issue 26: "the last adjective wins" got
    about 0.92 of the old unseen pairs, 9 of whose 10 templates took the second adjective's side)."""
    pairs = contrast_pairs(name, 600, seed=42)
    for which in ("last", "first"):
        right = [all(adjective_heuristic(text, which) == label for text, label in pair) for _, pair in pairs]
        assert sum(right) == len(pairs) // 2
    assert adjective_heuristic("The food was good, not bad at all.", "last") == 0
    assert adjective_heuristic("The food was good, not bad at all.", "first") == 1


def test_validation_and_test_shapes_are_never_training_shapes():
    """Shapes, not words (issue 26): the slots in order, every run of other words as one "w"."""
    assert shape("rather than {first}, {subject} {be} {second}.") == shape("despite being {first}, {subject} {be} {second}.") \
        == shape("far from being {first}, {subject} {be} {second}.") == "wASwB"
    assert shape("{subject} {be} {first} rather than {second}.") == shape("{subject} {be} less {first} than {second}.")
    assert shape("{subject} was {first}, not {second} at all!") == shape("{subject} {be} {first}, not {second}.")
    assert shared_shapes() == []
    for group in ("val", "test"):
        assert max(similarity for _, _, similarity in nearest_shapes(group)) < SHAPE_THRESHOLD
    # The old unseen set: 8 of its 10 templates had a training template of the same shape; such a set is caught.
    leaky = {**TEMPLATE_GROUPS, "test": (*TEST_TEMPLATES, ("{subject} {be} less {first} than {second}.", "second"),
                                         ("although {subject} {be} {first}, it {be} {second}.", "second"))}
    caught = {test for _, test in shared_shapes(leaky)}
    assert caught == {"{subject} {be} less {first} than {second}.", "although {subject} {be} {first}, it {be} {second}."}
    with pytest.raises(UserError, match="near-copy in training"):
        check_no_near_copies(nearest_shapes("test", leaky), SHAPE_THRESHOLD, "test template", "shape similarity")
    assert len(TRAINING_TEMPLATES) > 300 and {f for _, f in TRAINING_TEMPLATES} == {"first", "second"}


def test_training_words_are_disjoint_from_the_contrast_words_and_seen_pairs_are_new():
    lexicon = {"gorgeous": 0.7, "greatful": 0.8, "hopeless": -0.6, "dullable": -0.5, "nice": 0.5, "amusing": 0.6,
               "harmless": 0.2}
    positive, negative = lexicon_adjectives(lexicon, set(lexicon), 0.375)
    # stems of "great" and "dull" stay out; "-ing" is no adjective ending; "harmless" is rated too mildly
    assert (positive, negative) == (["gorgeous"], ["hopeless"])
    words = training_words(lexicon, set(lexicon), 0.375)
    assert "gorgeous" in words.positive and "hopeless" in words.negative and "wonderful" in words.positive
    assert not slot_words(EVALUATION_WORDS) & slot_words(words)
    added = training_sentences(1000, seed=1)
    assert len(added) == 1000 and Counter(label for _, label in added) == {0: 500, 1: 500}
    contrast_sentences = {s for name in CONTRAST_SETS for _, pair in contrast_pairs(name, 10_000, 1) for s, _ in pair}
    assert not contrast_sentences & {s for s, _ in added}
    for (a, la), (b, lb) in zip(added[::2], added[1::2]):  # whole pairs: both orders are seen in training
        assert Counter(tokenize_words(a)) == Counter(tokenize_words(b)) and la != lb
    assert set(CONTRAST_SETS["contrast_seen"]) == set(TRAINING_TEMPLATES)


@pytest.mark.parametrize("lexicon_feature", [False, True])
def test_bag_of_words_cannot_tell_a_pair_apart(lexicon_feature):
    """Same words, same score (with or without the summed lexicon ratings): pair accuracy 0 by construction."""
    net = build_network({"kind": "bow", "binary": True, "lexicon_feature": lexicon_feature}, 50)
    torch.nn.init.normal_(net.linear.weight)
    net.lexicon.uniform_(-1, 1)
    if lexicon_feature:
        torch.nn.init.normal_(net.lexicon_linear.weight)
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
    assert info["sizes"]["test"] == 2032 and all(720 <= info["sizes"][n] <= 1200 for n in CONTRAST_SETS)
    assert info["nearest_training_shape"]["test"]["at_or_above_threshold"] == 0 and (prepared / "nearest_shapes.csv").exists()
    assert info["nearest_training_snippet"]["test"]["at_or_above_threshold"] == 0 and (prepared / "nearest.csv").exists()
    nearest = {row.split(",")[1]: row for row in (prepared / "nearest.csv").read_text().splitlines()}
    assert "Doesn't really add up to much." not in nearest.get("Doesn't add up to much.", "")  # the pair issue 26 found
    assert info["training_adjectives"]["positive"] > len(TRAINING_WORDS.positive)  # drawn from the lexicon too
    assert sum(info["sizes"][s] for s in ("train", "val", "test")) - info["order_sentences_in_train"] == 10043
    assert info["contrast_words_not_in_vocabulary"] == []  # "despite", "rather", ... are words every model can see
    vocab = Vocabulary.load(prepared / "vocab.json")
    assert vocab.tokens[:2] == ["<pad>", "<unk>"] and vocab.encode(["zzzunseen"]) == [1]
    test = torch.load(prepared / "test.pt")
    assert int(test["lengths"].sum()) == len(test["ids"]) and set(test["labels"].tolist()) == {0, 1}
    train = torch.load(prepared / "train.pt")
    assert int(train["order_sentence"].sum()) == info["order_sentences_in_train"]
    lexicon = torch.load(prepared / "lexicon.pt")
    assert lexicon[vocab.index["good"]] > 0 > lexicon[vocab.index["bad"]]


def test_near_copy_snippets_stay_in_one_split():
    """Issue 26's rule for the snippets: "Doesn't add up to much." was a test snippet with "Doesn't really add up to
    much." in training (and two snippets were in both word for word); now a group moves whole to the held-out side."""
    from cnnrnn.sentiment.data import keep_near_copies_together

    splits = {"train": [("Doesn't really add up to much.", 0), ("A joy to watch.", 1)],
              "val": [("Dull.", 0)], "test": [("Doesn't add up to much.", 0)]}
    moved = keep_near_copies_together(splits, 0.7)
    assert moved == {"train": [("A joy to watch.", 1)], "val": [("Dull.", 0)],
                     "test": [("Doesn't add up to much.", 0), ("Doesn't really add up to much.", 0)]}


def test_a_model_can_train_on_the_real_snippets_only(prepared, params):
    from cnnrnn.paths import model_params
    from cnnrnn.sentiment.model import make_datamodule

    sizes = {}
    for model in ("bow", "rnn"):
        datamodule = make_datamodule(model_params(params, model), prepared)
        datamodule.setup("fit")
        sizes[model] = len(datamodule.datasets["train"])
    assert params["models"]["bow"]["train_on_order_sentences"] is False
    assert sizes["rnn"] - sizes["bow"] == params["data"]["order_sentences"]["count"]


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


def test_convolution_scores_a_sentence_alike_alone_and_in_a_padded_batch():
    torch.manual_seed(0)
    net = build_network({"kind": "cnn", "embedding_dim": 8, "filters": 6, "widths": [2, 3, 4, 5], "dropout": 0.0,
                         "lexicon_feature": True}, 30).eval()
    net.features.lexicon.uniform_(-1, 1)
    sentences = [torch.randint(2, 30, (n,)) for n in (7, 1, 4, 12)]  # shorter than the widest filter too
    ids, lengths, _ = collate_sentences([(s, torch.tensor(0)) for s in sentences])
    batched = net(ids, lengths)
    alone = torch.stack([net(s[None], torch.tensor([len(s)]))[0] for s in sentences])
    assert torch.allclose(batched, alone, atol=1e-6)
    assert net.encode(ids, lengths).shape == (4, 6 * 4)


def test_window_sees_only_the_last_tokens():
    net = build_network({"kind": "window", "window": 3, "embedding_dim": 4, "hidden": 5, "dropout": 0.0,
                         "lexicon_feature": False}, 20)
    ids = torch.tensor([[4, 5, 6, 7, 0], [8, 9, 0, 0, 0]])
    assert net.last_tokens(ids, torch.tensor([4, 2])).tolist() == [[5, 6, 7], [0, 8, 9]]


# ----------------------------------------------------------------------------- training, prediction


@pytest.mark.parametrize("model", ["bow", "window", "cnn", "rnn"])
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


def test_validate_and_evaluate_measure_the_same_way_on_their_own_splits(tmp_path, prepared, params):
    """Untrained models saved by the real save_model: the val twins, intervals, paired tests and tables."""
    import json

    import pandas as pd

    from cnnrnn.paths import AppPaths, model_params
    from cnnrnn.sentiment.evaluate import evaluate, validate
    from cnnrnn.sentiment.model import make_datamodule, make_module, save_model

    paths = AppPaths(tmp_path, "sentiment")
    paths.prepared.parent.mkdir(parents=True)
    paths.prepared.symlink_to(prepared)
    torch.manual_seed(0)
    for model in params["models"]:
        p = model_params(params, model)
        datamodule = make_datamodule(p, prepared)
        (paths.model_dir / model).mkdir(parents=True)
        save_model(make_module(p, datamodule), paths.model_dir / model, datamodule, p)
    p = {**params, "evaluate": {**params["evaluate"], "resamples": 200}}
    val = validate(p, paths)
    assert val["val_accuracy"] == val["rnn_val_accuracy"] and val["n_val_contrast_pairs"] == 600
    assert val["last_adjective_val_contrast_pair_accuracy"] == val["first_adjective_val_contrast_pair_accuracy"] == 0.5
    assert {f"{m}_val_{k}" for m in params["models"] for k in ("accuracy", "contrast_pair_accuracy")} <= set(val)
    assert val["bow_val_contrast_pair_accuracy"] == 0  # same words, same score
    assert not any("test" in k or "seen" in k for k in val) and not paths.plots.exists()  # no pictures, no test figures
    metrics, files = evaluate(p, paths)
    for m in params["models"]:
        for k in ("test_accuracy", "contrast_seen_pair_accuracy", "contrast_unseen_pair_accuracy"):
            assert metrics[f"{m}_{k}_ci95_low"] <= metrics[f"{m}_{k}"] <= metrics[f"{m}_{k}_ci95_high"]
    for m in ("bow", "window", "cnn", "last_adjective", "first_adjective"):
        for k in ("test_accuracy", "contrast_unseen_pair_accuracy"):
            key = f"rnn_vs_{m}_{k}"
            if k == "test_accuracy" and m.endswith("_adjective"):
                assert f"{key}_difference" not in metrics  # the heuristics read the contrast pairs only
                continue
            assert metrics[f"{key}_difference"] == pytest.approx(metrics[f"rnn_{k}"] - metrics[f"{m}_{k}"], abs=2e-4)
            assert f"{key}_difference_ci95_low" in metrics
            assert (0 <= metrics[f"{key}_mcnemar_p"] <= 1) if k == "test_accuracy" else f"{key}_mcnemar_p" not in metrics
    for heuristic in ("last_adjective", "first_adjective"):
        assert metrics[f"{heuristic}_contrast_unseen_pair_accuracy"] == 0.5
        assert metrics[f"{heuristic}_contrast_seen_pair_accuracy"] == 0.5
    assert metrics["n_contrast_unseen_templates"] == 16 and metrics["n_far_contrast_unseen_templates"] >= 1
    assert "far_rnn_contrast_unseen_pair_accuracy_ci95_low" in metrics
    assert metrics["test_accuracy"] == metrics["rnn_test_accuracy"] and "lexicon_sum_last5_test_accuracy" in metrics
    assert json.loads(json.dumps(metrics)) == metrics  # plain numbers for metrics/sentiment.json and MLflow
    assert {f.name for f in files} == {"models.csv", "contrast_shapes.csv", "contrast_scores.csv", "contrast_pairs.png"}
    table = pd.read_csv(paths.plots / "models.csv")
    assert list(table["model"])[:4] == list(params["models"]) and "rnn_vs_model_test_accuracy" in table
    rnn = table.set_index("model").loc["rnn"]
    assert rnn["test_accuracy"] == metrics["rnn_test_accuracy"] and rnn["far_test_accuracy"] == metrics["far_rnn_test_accuracy"]
    shapes = pd.read_csv(paths.plots / "contrast_shapes.csv")
    assert set(shapes["set"]) == {"contrast_seen", "contrast_unseen"} and (shapes["pairs"] > 0).all()
    assert {"last_adjective", "first_adjective", "rnn"} <= set(shapes["model"])


def test_corrupt_or_foreign_model_file_is_a_clear_error(tmp_path):
    from cnnrnn.sentiment.predict import load

    (tmp_path / "rnn").mkdir()
    (tmp_path / "rnn" / "model.pt").write_bytes(b"not a model at all")
    with pytest.raises(UserError, match="not a readable model file"):
        load(tmp_path)
    torch.save({"app": "keyboard"}, tmp_path / "rnn" / "model.pt")
    with pytest.raises(UserError, match="not a cnnrnn sentiment model"):
        load(tmp_path)
