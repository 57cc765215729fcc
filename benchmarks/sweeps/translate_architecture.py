"""Which recurrent cell, attention and dropout for translate? Decided on the validation pairs only.

Trains the seq2seq model once per grid point on the prepared training pairs (``data/translate/prepared``,
from `dvc repro translate_prepare`) with everything else as ``params.yaml`` says, and records what the
project's own ``validate()`` measures (BLEU, chrF, exact match of beam and greedy decoding, and the
word-by-word baseline) with the training time and the device. The test pairs are never read.

Needs torch, pytorch_lightning, sacrebleu, sentencepiece, pandas and pyyaml; not Hydra, MLflow or DVC, so it
also runs on a GPU machine with a plain scientific Python (points run in parallel processes there).
Adds its rows to benchmarks/sweeps/translate.csv:

    python benchmarks/sweeps/translate_architecture.py --grid cell=gru,lstm attention=bahdanau,luong dropout=0.1,0.2,0.3
    python benchmarks/sweeps/translate_architecture.py ... --parallel 12    # a GPU machine
    python benchmarks/sweeps/translate_architecture.py --grid dropout=0.3 --table benchmarks/sweeps/translate_recheck.csv \
        --note "issue 26 split"    # the runner-up settings again, on today's validation set
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from standalone_grid import add_rows, grid_points  # noqa: E402
TABLE = ROOT / "benchmarks" / "sweeps" / "translate.csv"


def run_point(point: dict, prepared: str, work: str, threads: int) -> dict:
    import pytorch_lightning as pl
    import torch
    import yaml

    from cnnrnn.paths import AppPaths
    from cnnrnn.translate.evaluate import validate
    from cnnrnn.translate.model import make_datamodule, make_module, save_model

    torch.set_num_threads(threads)
    params_file = yaml.safe_load((ROOT / "params.yaml").read_text())
    params = {**params_file["translate"], "seed": params_file["seed"]}
    params["model"] = {**params["model"], **{k: v for k, v in point.items() if k in params["model"]}}
    params["train"] = {**params["train"], **{k: v for k, v in point.items() if k in params["train"]}}
    name = "_".join(f"{k}-{v}" for k, v in point.items())
    paths = AppPaths(Path(work) / name, "translate")
    paths.prepared.parent.mkdir(parents=True, exist_ok=True)
    if not paths.prepared.exists():
        paths.prepared.symlink_to(Path(prepared).resolve())
    paths.model_dir.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(params["seed"], workers=True, verbose=False)
    datamodule = make_datamodule(params, paths.prepared)
    datamodule.setup("fit")
    module = make_module(params, datamodule)
    trainer = pl.Trainer(max_epochs=params["train"]["max_epochs"], gradient_clip_val=params["train"]["gradient_clip_val"],
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0)
    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule)
    seconds = time.perf_counter() - start
    save_model(module.cpu(), paths.model_dir, datamodule, params)
    figures = validate(params, paths)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    row = {**point, "val_chrf": figures["val_chrf"], "val_bleu": figures["val_bleu"],
           "val_exact_match": figures["val_exact_match"], "greedy_val_chrf": figures.get("greedy_val_chrf"),
           "word_by_word_val_chrf": figures["word_by_word_val_chrf"],
           "final_val_loss": round(float(trainer.callback_metrics["val_loss"]), 4),
           "train_seconds": round(seconds, 1), "device": device, "max_epochs": params["train"]["max_epochs"]}
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", nargs="+", required=True, help="KEY=V1,V2 (keys of translate.model or translate.train)")
    parser.add_argument("--prepared", default=str(ROOT / "data" / "translate" / "prepared"))
    parser.add_argument("--work-dir", default=str(ROOT / ".sweeps" / "translate"))
    parser.add_argument("--parallel", type=int, default=1, help="points trained at once (one process each)")
    parser.add_argument("--output", default=None, help="also write the rows as JSON here")
    parser.add_argument("--table", default=str(TABLE), help="the CSV the rows are added to (default: translate.csv)")
    parser.add_argument("--note", default="", help="a note written in every row (e.g. which split)")
    args = parser.parse_args()
    points = grid_points(args.grid)
    threads = max(1, (os.cpu_count() or 2) // args.parallel)
    if args.parallel > 1:
        import multiprocessing

        with ProcessPoolExecutor(args.parallel, mp_context=multiprocessing.get_context("spawn")) as pool:
            rows = list(pool.map(run_point, points, [args.prepared] * len(points), [args.work_dir] * len(points),
                                 [threads] * len(points)))
    else:
        rows = [run_point(p, args.prepared, args.work_dir, threads) for p in points]
    rows = [{**row, "note": args.note} if args.note else row for row in rows]
    if args.output:
        Path(args.output).write_text(json.dumps(rows, indent=2) + "\n")
    print(add_rows(Path(args.table), rows).sort_values("val_chrf", ascending=False).to_string(index=False))


if __name__ == "__main__":
    main()
