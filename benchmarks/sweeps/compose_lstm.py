"""Which size, dropout, learning rate and epochs for compose's LSTM? Decided on the validation pieces only.

Trains the frame LSTM once per grid point on the prepared training pieces (``data/compose/prepared``, from
`dvc repro compose_prepare`) with everything else as ``params.yaml`` says, and records the validation NLL per
frame (the frame-weighted ``val_loss``, what ``validate()`` reports as ``val_nll_per_frame``), the training
time and the device. The test pieces are never read.

Needs torch, pytorch_lightning, pandas and pyyaml only (not Hydra, MLflow, DVC or the MIDI libraries), so it
also runs on a GPU machine with a plain scientific Python. Adds its rows to benchmarks/sweeps/compose.csv:

    python benchmarks/sweeps/compose_lstm.py --grid hidden=256,512 dropout=0.2,0.4 --parallel 4
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from standalone_grid import add_rows, grid_points  # noqa: E402
TABLE = ROOT / "benchmarks" / "sweeps" / "compose.csv"


def run_point(point: dict, prepared: str, threads: int, pinned: bool = True) -> dict:
    import yaml

    from cnnrnn.reproducibility import pin_numerics

    params_file = yaml.safe_load((ROOT / "params.yaml").read_text())
    # The pipeline's instruction-set pins (params.yaml runtime) before torch loads: they decide the speed too
    # (the AVX2 pin makes the LSTM about 1.5x slower on an AVX-512 machine), and the time bar is the pipeline's.
    pin_numerics({**(params_file["runtime"] if pinned else {}), "threads": threads})
    import pytorch_lightning as pl
    import torch

    from cnnrnn.compose.model import make_datamodule, make_module

    params = {**params_file["compose"], "seed": params_file["seed"]}
    params["model"] = {**params["model"], **{k: v for k, v in point.items() if k in params["model"]}}
    params["train"] = {**params["train"], **{k: v for k, v in point.items() if k in params["train"]}}
    pl.seed_everything(params["seed"], workers=True, verbose=False)
    datamodule = make_datamodule(params, Path(prepared))
    datamodule.setup("fit")
    module = make_module(params, datamodule)
    best = {"val": float("inf"), "epoch": 0}

    class Best(pl.Callback):
        def on_validation_epoch_end(self, trainer, pl_module):
            loss = float(trainer.callback_metrics["val_loss"])
            if loss < best["val"]:
                best.update(val=loss, epoch=trainer.current_epoch + 1)

    trainer = pl.Trainer(max_epochs=params["train"]["max_epochs"], gradient_clip_val=params["train"]["gradient_clip_val"],
                         logger=False, enable_checkpointing=False, enable_progress_bar=False, callbacks=[Best()],
                         enable_model_summary=False, num_sanity_val_steps=0)
    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    row = {**point, "val_nll_per_frame": round(float(trainer.callback_metrics["val_loss"]), 4),
           "best_val_nll_per_frame": round(best["val"], 4), "best_epoch": best["epoch"],
           "train_nll_per_frame": round(float(trainer.callback_metrics["train_loss"]), 4),
           "train_seconds": round(time.perf_counter() - start, 1), "device": device,
           "cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads()}
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", nargs="+", required=True, help="KEY=V1,V2 (keys of compose.model or compose.train)")
    parser.add_argument("--prepared", default=str(ROOT / "data" / "compose" / "prepared"))
    parser.add_argument("--parallel", type=int, default=1, help="points trained at once (one process each)")
    parser.add_argument("--output", default=None, help="also write the rows as JSON here")
    parser.add_argument("--unpinned", action="store_true",
                        help="leave the instruction set to the machine (default: params.yaml's runtime pins)")
    args = parser.parse_args()
    points = grid_points(args.grid)
    threads = max(1, (os.cpu_count() or 2) // args.parallel)
    with ProcessPoolExecutor(args.parallel, mp_context=multiprocessing.get_context("spawn")) as pool:
        rows = list(pool.map(run_point, points, [args.prepared] * len(points), [threads] * len(points),
                             [not args.unpinned] * len(points)))
    if args.output:
        Path(args.output).write_text(json.dumps(rows, indent=2) + "\n")
    print(add_rows(TABLE, rows).sort_values("val_nll_per_frame").to_string(index=False))


if __name__ == "__main__":
    main()
