"""The applications, and the protocol each one follows: the one place that lists them.

The command line, the stages, ``dvc.yaml`` (written by ``cnnrnn pipeline``), the report and
the tests' tiny settings all read :data:`APPLICATIONS`. Adding an application is a package
``src/cnnrnn/<app>/`` with the parts of :data:`PROTOCOL`, its ``conf/<app>/`` groups, and one
entry here. Importing this module is cheap: it names the parts' modules and imports them only
when a stage asks for one.

The protocol (``<part>``: the module of ``cnnrnn.<app>`` that provides it, then its functions):

- ``data``: ``prepare(params, raw, out) -> info`` (raw files -> prepared tensors; no Lightning,
  no MLflow); optional ``complete_fetch(params, raw)``, run after the configured files are
  fetched (e.g. detect's COCO subset: choose images, then download only those);
- ``model``: ``make_datamodule(params, prepared)``, ``make_module(params, datamodule)`` and
  ``save_model(module, model_dir, datamodule, params) -> Path`` (a :mod:`cnnrnn.model_file`);
- ``evaluate``: ``evaluate(params, paths) -> (metrics, files)`` on the held-out test split (headline
  metrics with their 95% intervals, paired comparisons with baselines, pictures), and
  ``validate(params, paths) -> metrics``: the validation twins of the bar metrics, computed by the
  same code on the validation split, named ``val_*`` (or ``<model>_val_*``). Validation chooses
  defaults (``cnnrnn bench sweep``); the test split only reports;
- ``predict``: ``load(model_dir)``, ``describe(model, input, top, as_json, output, **options) -> str`` (one
  input of ``cnnrnn predict``; ``options`` are the application's ``predict_options``) and ``predict_frame(model, frame)`` (the MLflow pyfunc model);
- ``generate`` (optional, with its command-line options): ``generate(model_dir, options) -> str``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from cnnrnn.errors import UserError

# part -> (functions every application provides, functions it may provide)
PROTOCOL: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "data": (("prepare",), ("complete_fetch",)),
    "model": (("make_datamodule", "make_module", "save_model"), ()),
    "evaluate": (("evaluate", "validate"), ()),
    "predict": (("load", "describe", "predict_frame"), ()),
}
GENERATE_FUNCTION = "generate"


def positive_int(text: str) -> int:
    """An argparse type: a whole number of 1 or more."""
    import argparse

    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


@dataclass(frozen=True)
class Option:
    """One command-line option of ``cnnrnn generate APP`` (the arguments of ``argparse.add_argument``)."""

    flags: tuple[str, ...]
    help: str
    type: Any = str
    default: Any = None
    required: bool = False
    flag: bool = False  # a switch with no value (store_true)

    def argparse_keywords(self) -> dict[str, Any]:
        if self.flag:
            return {"action": "store_true", "help": self.help}
        return {"type": self.type, "default": self.default, "required": self.required, "help": self.help}


@dataclass(frozen=True)
class Application:
    """One application: what it is, where its parts are, and how its stages appear in ``dvc.yaml``.

    Params are written relative to the application's section of ``params.yaml`` (``data.source``
    means ``<app>.data.source``), except ``seed``, the project's one seed.
    """

    name: str
    network: str  # "CNN" or "RNN": which half of the mission it shows
    summary: str
    inputs: str  # what `cnnrnn predict APP` takes: "images" or "midi" (files), or "texts"
    several_models: bool = False  # one train stage per entry of <app>.models (foreach), models/<app>/<name>/
    fetch_params: tuple[str, ...] = ("data.source",)
    prepare_params: tuple[str, ...] = ("seed", "data")
    evaluate_params: tuple[str, ...] = ()  # read by evaluate besides <app>.evaluate (its report-only keys left out)
    evaluate_outs: tuple[str, ...] = ()  # cached outputs of evaluate besides metrics and plots
    evaluate_plots: tuple[str, ...] = ()  # files evaluate writes under plots/<app>/ (kept in git)
    curves: tuple[str, ...] = ("train_loss", "val_loss")  # train_curves.csv columns `dvc plots show` draws
    plot_definitions: tuple[dict | str, ...] = ()  # how `dvc plots show` draws evaluate's plots (after the curves)
    generate_options: tuple[Option, ...] = ()  # empty: the application does not generate
    predict_options: tuple[Option, ...] = ()  # its own options of `cnnrnn predict` (passed to describe by name)
    metric_prefixes: tuple[str, ...] = ()  # besides <app>.models: prefixes of metric names (<prefix>_val_<m> twins <prefix>_<m>)
    tiny: tuple[str, ...] = ()  # Hydra overrides that make the whole pipeline tiny (tests)
    headline: str = ""  # the metric `cnnrnn summary` leads with (a key of metrics/<app>.json)
    baseline: str = ""  # the same measurement of the baseline it is compared with, where there is one
    reference: str = ""  # a published figure for the task, with its source and how its data differs (the report)

    def module_name(self, part: str) -> str:
        """``cnnrnn.<app>.<part>``, the module of a part of :data:`PROTOCOL` (``generate`` is in ``predict``)."""
        return f"cnnrnn.{self.name}.{'predict' if part == GENERATE_FUNCTION else part}"

    def part(self, part: str) -> ModuleType:
        return importlib.import_module(self.module_name(part))

    @property
    def generates(self) -> bool:
        return bool(self.generate_options)


_APPLICATIONS = (
    Application(
        name="classify", network="CNN", inputs="images",
        headline="test_accuracy",
        summary="a CNN names the class of an image (MNIST-5k digits by default)",
        reference=('LeNet-5: 0.9905 test accuracy on the full MNIST, 60,000 training digits (LeCun et al. 1998). Here '
                   '3,600 training digits of the same kind.'),
        fetch_params=("data.source",),
        prepare_params=("seed", "data.name", "data.format", "data.source.files", "data.classes", "data.val_fraction",
                        "data.test_fraction"),
        evaluate_params=("seed",),  # draws the bootstrap resamples of the intervals
        evaluate_plots=("confusion.csv", "per_class.csv", "confusion_matrix.png", "misclassified.png",
                        "feature_maps.png"),
        curves=("train_loss", "val_loss", "val_accuracy"),
        plot_definitions=(
            {"classify confusion matrix": {"template": "confusion", "x": "predicted",
                                           "y": {"plots/classify/confusion.csv": "actual"}}},
            "plots/classify/confusion_matrix.png", "plots/classify/misclassified.png", "plots/classify/feature_maps.png",
        ),
        tiny=("classify.train.max_epochs=1", "classify.train.limit_train_batches=4", "classify.train.limit_val_batches=2",
              "classify.model.channels=[8,16]", "classify.model.hidden=16"),
    ),
    Application(
        name="detect", network="CNN", inputs="images",
        headline="map_50",
        summary="boxes and classes of every object in an image, written and scored as COCO",
        reference=('Faster R-CNN (VGG-16), trained on VOC 2007+2012: 0.732 mAP@0.5 (11-point AP) on PASCAL VOC 2007 '
                   'test, 20 classes of real objects (Ren et al. 2015). Not the same task: digits on textures are '
                   'easier.'),
        fetch_params=("seed", "data"),  # complete_fetch chooses the COCO subset from data.subset
        evaluate_params=("seed",),
        evaluate_outs=("data/detect/evaluation",),
        evaluate_plots=("per_class_ap.csv", "predictions.png"),
        plot_definitions=("plots/detect/predictions.png",),
        tiny=("detect.data.images.train=16", "detect.data.images.val=8", "detect.data.images.test=8",
              "detect.train.max_epochs=1"),
    ),
    Application(
        name="localize", network="CNN", inputs="images",
        headline="mean_iou",
        summary="the class and box of the one object in an image",
        reference=('VGG: 25.3% top-5 localization error (class right and IoU at least 0.5) on ILSVRC 2014, 1,000 classes'
                   ' of photographs (Simonyan and Zisserman 2015). Not the same task; iou50_accuracy is the closer '
                   'measure here.'),
        evaluate_params=("seed",),
        evaluate_plots=("per_class.csv", "iou.csv", "predictions.png"),
        curves=("train_loss", "val_loss", "val_accuracy", "val_iou"),
        plot_definitions=(
            {"localize IoU per test image": {"template": "scatter", "x": "image", "y": {"plots/localize/iou.csv": "iou"}}},
            "plots/localize/predictions.png",
        ),
        tiny=("localize.data.images.train=64", "localize.data.images.val=16", "localize.data.images.test=16",
              "localize.train.max_epochs=1"),
    ),
    Application(
        name="stylize", network="CNN", inputs="images",
        headline="optimize_deception_rate", baseline="colour_matched_deception_rate",
        summary="the style of one image over the content of another: Gatys' optimization and feed-forward networks",
        reference=('Johnson et al. 2016: a feed-forward network matches the loss of 50 to 100 L-BFGS iterations of '
                   "Gatys' optimization and is about 1,000 times faster than 500 of them. Here: the share of crops a "
                   "judge trained from scratch takes for the style (Sanakoyeu et al.'s deception rate; higher: more of "
                   "the style), against the photograph in the style's colours, and the seconds of each method."),
        evaluate_plots=("per_image.csv", "grid.png"),
        metric_prefixes=("feedforward", "optimize", "unstyled", "colour_matched", "grain_only"),
        curves=("train_style_loss", "train_content_loss", "val_style_loss", "val_content_loss"),
        plot_definitions=(
            {"stylize deception rate per test image and method (higher: the judge takes more crops for the style)": {
                "template": "bar_horizontal", "x": "deception_rate", "y": {"plots/stylize/per_image.csv": "content"}}},
            "plots/stylize/grid.png",
        ),
        predict_options=(
            Option(("--style",), "stylize: which style (default: the first trained one)"),
            Option(("--method",), "stylize: feedforward (one pass, default) or optimize (Gatys: slower, no training)",
                   default="feedforward"),
            Option(("--steps",), "stylize --method optimize: L-BFGS steps (default: predict.optimize.steps)",
                   type=positive_int),
        ),
        tiny=("stylize.train.max_epochs=1", "stylize.train.crops_per_epoch=8", "stylize.train.crop_side=64",
              "stylize.train.val_crops_per_image=1",
              "stylize.predict.optimize.steps=3", "stylize.predict.optimize.working_side=64",
              "stylize.predict.optimize.style_side=64", "stylize.evaluate.side=64", "stylize.data.side=128",
              "stylize.evaluate.timing_repeats=1", "stylize.evaluate.judge.steps=4", "stylize.evaluate.judge.side=64",
              "stylize.evaluate.judge.crop_side=32", "stylize.evaluate.judge.batch_size=8"),
    ),
    Application(
        name="sentiment", network="RNN", inputs="texts", several_models=True,
        headline="test_accuracy", baseline="bow_test_accuracy",
        summary="order-sensitive sentiment: a bag of words, a fixed window, a CNN and an RNN on the same sentences",
        reference=("CNN over word2vec vectors: 0.815 accuracy on MR, Pang and Lee's 10,662 Rotten Tomatoes snippets, "
                   '10-fold cross-validation (Kim 2014). Here: snippets of the same source, rated by people, words '
                   'learned from them alone.'),
        evaluate_params=("seed", "models"),
        evaluate_plots=("models.csv", "contrast_shapes.csv", "contrast_scores.csv", "contrast_pairs.png"),
        curves=("val_accuracy",),
        plot_definitions=("plots/sentiment/contrast_pairs.png",),
        tiny=("sentiment.train.limit_train_batches=3", "sentiment.train.limit_val_batches=2",
              "sentiment.data.order_sentences.count=200", "sentiment.data.contrast_pairs=50",
              *[f"sentiment.models.{m}.train.max_epochs=1" for m in ("bow", "window", "cnn", "rnn")]),
    ),
    Application(
        name="keyboard", network="RNN", inputs="texts", several_models=True,
        headline="test_perplexity", baseline="ngram_test_perplexity",
        summary="next-word suggestions (word LSTM against a Kneser-Ney n-gram) and text generation (char LSTM)",
        reference=('LSTM: test perplexity 82.7 (medium) and 78.4 (large) on the Penn Treebank, news text with a '
                   '10,000-word vocabulary (Zaremba et al. 2014). Perplexities compare only on one corpus and '
                   "vocabulary: Shakespeare's here."),
        evaluate_params=("seed", "models", "baseline"),
        metric_prefixes=("ngram",),
        evaluate_plots=("context_curve.csv", "context_curve.png", "suggestions.csv", "suggestions.png", "ngram_grid.csv",
                        "generated.txt"),
        plot_definitions=(
            {"keyboard context curve (test loss when the LSTM sees only the last k words)": {
                "template": "linear", "x": "context_words", "y": {"plots/keyboard/context_curve.csv": "test_loss"}}},
            "plots/keyboard/context_curve.png", "plots/keyboard/suggestions.png",
        ),
        generate_options=(
            Option(("--prompt",), "text to continue, e.g. 'ROMEO:'", required=True),
            Option(("--length",), "tokens (characters or words) to add (default 300)", type=positive_int, default=300),
            Option(("--temperature",), "sampling temperature, above 0: lower is safer and more repetitive (default 0.8)",
                   type=float, default=0.8),
            Option(("--seed",), "random seed of the sampling: the same seed gives the same text (default 42)",
                   type=int, default=42),
            Option(("--model",), "which trained model (default: the character model)"),
        ),
        tiny=("keyboard.train.limit_train_batches=3", "keyboard.train.limit_val_batches=2",
              "keyboard.evaluate.max_test_tokens=3000", "keyboard.evaluate.max_val_tokens=3000",
              "keyboard.evaluate.context_positions=100",
              "keyboard.evaluate.examples=2", "keyboard.evaluate.generate_length=20",
              *[f"keyboard.models.{m}.{k}" for m in ("word", "char")
                for k in ("train.max_epochs=1", "hidden=32", "embedding_dim=16")]),
    ),
    Application(
        name="translate", network="RNN", inputs="texts",
        headline="chrf", baseline="word_by_word_chrf",
        summary="English to French (or Spanish): a seq2seq RNN with attention against copying and word-by-word",
        reference=("RNNsearch-50, a GRU with attention: 26.75 BLEU on WMT'14 English-French news (Bahdanau et al. 2015)."
                   ' Here short UI strings: BLEU is measured too (see below), on easier text.'),
        evaluate_params=("seed", "baseline"),
        metric_prefixes=("greedy", "copy", "word_by_word"),
        evaluate_plots=("by_length.csv", "examples.csv", "attention.png"),
        curves=("train_loss", "val_loss", "val_token_accuracy"),
        plot_definitions=(
            {"translate chrF by source length (words)": {
                "template": "bar_horizontal", "x": "chrf", "y": {"plots/translate/by_length.csv": "source_words"}}},
            "plots/translate/attention.png",
        ),
        predict_options=(
            Option(("--beam",), "translate: beam width (default: translate.predict.beam_width as trained; 1 is greedy)",
                   type=positive_int),
            Option(("--show-attention",), "translate: also print which source piece each output piece attended to",
                   flag=True),
        ),
        tiny=("translate/data=numbers_dates", "translate.data.numbers.high=300", "translate.data.dates.count=200",
              "translate.data.tokens.vocabulary_size=100", "translate.train.max_epochs=1", "translate.train.limit_train_batches=3",
              "translate.train.limit_val_batches=2", "translate.model.hidden=32", "translate.model.embedding_dim=16",
              "translate.evaluate.bootstrap_resamples=50",
              "translate.predict.beam_width=2"),
    ),
    Application(
        name="compose", network="RNN", inputs="midi",
        headline="test_nll_per_frame", baseline="repeat_test_nll_per_frame",
        summary="polyphonic music: an LSTM over piano-roll frames with a NADE over each frame's notes (Bach chorales from "
                "MIDI) against two baselines",
        reference=('LSTM: 8.67 nats per frame on JSB Chorales, GRU 8.54 (Chung et al. 2014); RNN-NADE 5.56, which models'
                   " each frame's notes jointly (Boulanger-Lewandowski et al. 2012). Bach chorales here too, four parts, but "
                   "music21's corpus split by tune family: context for scale, not a comparison."),
        evaluate_params=("seed", "baseline", "generate"),
        evaluate_outs=("data/compose/generated",),
        evaluate_plots=("pieces.csv", "generated.csv", "generated.png"),
        plot_definitions=("plots/compose/generated.png",),
        generate_options=(
            Option(("--bars",), "bars of 4 quarter notes (default: generate.bars, 16)", type=positive_int),
            Option(("--seed",), "random seed: the same seed gives the same piece (default 7)", type=int, default=7),
            Option(("--temperature",), "sampling temperature, above 0 (default: generate.temperature, 1.0)", type=float),
            Option(("-o", "--output"), "the MIDI file to write (default piece-<seed>.mid)"),
            Option(("--wav",), "also write a WAV rendering here (pretty_midi's own synthesis)"),
            Option(("--primer",), "a MIDI file whose opening the piece continues"),
        ),
        tiny=("compose.data.corpus.pattern=bwv1*.mxl", "compose.train.max_epochs=1", "compose.train.limit_train_batches=2",
              "compose.train.limit_val_batches=2", "compose.model.hidden=16", "compose.model.nade_units=8", "compose.generate.pieces=2",
              "compose.generate.bars=2", "compose.evaluate.bootstrap_resamples=50"),
    ),
)

APPLICATIONS: dict[str, Application] = {app.name: app for app in _APPLICATIONS}
# The mission's other applications, not registered yet (each has its issue).
PLANNED: tuple[str, ...] = ()


def application(name: str) -> Application:
    """The registered application ``name``; a :class:`UserError` listing the registered ones otherwise."""
    if name not in APPLICATIONS:
        planned = f" ({name} is planned, not built yet)" if name in PLANNED else ""
        raise UserError(f"unknown application {name!r}{planned}; choose one of: {', '.join(APPLICATIONS)}")
    return APPLICATIONS[name]


def tiny_overrides(apps: list[str] | None = None) -> list[str]:
    """The Hydra overrides that make every application (or those of ``apps``) tiny, for tests."""
    return [o for name in sorted(apps or APPLICATIONS) for o in APPLICATIONS[name].tiny]
