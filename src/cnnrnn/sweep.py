"""Choosing defaults on validation, and measuring seed noise on a fixed test set (``cnnrnn bench sweep|seeds``).

Both train in scratch copies of the project (``conf/`` and a ``params.yaml`` composed with the
candidate's overrides) that read the project's prepared data through a symlink, so every
candidate sees the same split; a candidate that changes ``<app>.data`` prepares its own copy
from the project's raw files (its validation split stays the same wherever the data code draws
each split by itself, as the digit scenes do).

- ``sweep``: trains every point of a grid and records only the validation figures of the
  application's ``validate`` (the test split is never measured), into
  ``benchmarks/sweeps/<app>[_<model>].csv``; the default in ``conf/`` is the best row by the
  figure named with ``--choose-by``.
- ``seeds``: trains with several seeds on the project's prepared split and evaluates on its test
  split; mean and standard deviation of each metric go to ``benchmarks/seeds/<app>.csv``.

Neither is part of ``dvc repro``: they take minutes to hours.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from cnnrnn.config import compose, project_root, write_params
from cnnrnn.errors import UserError
from cnnrnn.paths import AppPaths, model_names
from cnnrnn.verification import is_timing


def parse_grid(grid: list[str]) -> list[tuple[str, list[str]]]:
    """``["a.b=1,2", "c=x"]`` -> ``[("a.b", ["1", "2"]), ("c", ["x"])]``."""
    axes = []
    for item in grid:
        key, sep, values = item.partition("=")
        if not sep or not key or not values:
            raise UserError(f"--grid {item!r}: expected KEY=VALUE[,VALUE...], e.g. keyboard.models.word.dropout=0.15,0.25")
        axes.append((key, values.split(",")))
    return axes


def grid_points(axes: list[tuple[str, list[str]]]) -> list[dict[str, str]]:
    keys = [k for k, _ in axes]
    return [dict(zip(keys, values)) for values in itertools.product(*(v for _, v in axes))]


def point_name(point: dict[str, str]) -> str:
    text = "__".join(f"{k.split('.', 1)[-1]}={v}" for k, v in point.items()) or "default"
    return "".join(c if c.isalnum() or c in "=_.-" else "-" for c in text)


def scratch_project(root: Path, work: Path, app: str, overrides: list[str], keep_models: list[str]) -> Path:
    """A project in ``work`` with ``params.yaml`` composed from ``overrides``; prepared data and the
    models of ``keep_models`` (the application's other models, which ``validate`` also reads) are symlinks
    into ``root``. Data overrides get their own prepared copy, made from the project's raw files."""
    work.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(work / "conf", ignore_errors=True)
    shutil.copytree(root / "conf", work / "conf")
    shutil.copy2(root / "dvc.yaml", work / "dvc.yaml")
    write_params(compose(overrides, work), work)
    source, target = AppPaths(root, app), AppPaths(work, app)
    target.prepared.parent.mkdir(parents=True, exist_ok=True)
    if any(o.startswith(f"{app}.data") or o.startswith(f"{app}/data") for o in overrides):
        if not target.raw.exists():
            target.raw.symlink_to(source.raw.resolve())
        if not (target.prepared / "info.json").is_file():
            from cnnrnn import stages

            stages.prepare(app, work)
    elif not target.prepared.exists():
        target.prepared.symlink_to(source.prepared.resolve())
    for name in keep_models:
        link = target.model_dir / name
        if not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to((source.model_dir / name).resolve())
    return work


def _numbers(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def training_params(params_text: str, app: str, model: str | None) -> dict[str, Any]:
    """What the train stage of ``app`` (``model``) reads from a ``params.yaml`` text: the seed, the runtime
    pins, and the application's data, train and model settings (not evaluate's, nor other models')."""
    import yaml

    params = yaml.safe_load(params_text) or {}
    section = params.get(app) or {}
    chosen = (section.get("models") or {}).get(model) if model else section.get("model")
    return {"seed": params.get("seed"), "runtime": params.get("runtime"), "data": section.get("data"),
            "train": section.get("train"), "model": chosen}


def trained_before(work: Path, app: str, model: str | None, params_text: str) -> bool:
    """Whether ``work`` already holds a model trained with the same training params (a resumed sweep)."""
    model_dir = AppPaths(work, app).model_dir / (model or "")
    stamp = model_dir / "sweep_params.yaml"
    return ((model_dir / "train_summary.json").is_file() and stamp.is_file()
            and training_params(stamp.read_text(), app, model) == training_params(params_text, app, model))


def train_point(work: Path, app: str, model: str | None) -> float:
    """Train in ``work`` unless already done with the same training params; returns the training seconds."""
    from cnnrnn import stages

    params_text = (work / "params.yaml").read_text()
    model_dir = AppPaths(work, app).model_dir / (model or "")
    if not trained_before(work, app, model, params_text):
        if model_dir.is_symlink():
            model_dir.unlink()
        stages.train(app, work, model=model)
        (model_dir / "sweep_params.yaml").write_text(params_text)
    return float(json.loads((model_dir / "train_summary.json").read_text())["train_seconds"])


def earlier_rows(output: Path, points: list[dict[str, str]]):
    """Rows of the table from earlier sweeps (other axes, or other points), kept beside this sweep's rows.

    A row with the same values on every axis of this grid is dropped: this sweep measures it again.
    """
    import pandas as pd

    if not output.exists():
        return pd.DataFrame()
    table = pd.read_csv(output, dtype=str, keep_default_na=False)
    keys = list(points[0])
    if not all(k in table for k in keys):
        return table
    again = {tuple(p[k] for k in keys) for p in points}
    return table[[tuple(row) not in again for row in table[keys].itertuples(index=False)]]


def sweep(app: str, grid: list[str], overrides: list[str], model: str | None = None, work_dir: Path | None = None,
          choose_by: str | None = None, output: Path | None = None) -> dict[str, Any]:
    """Train every grid point and record its validation figures (never the test split's)."""
    import pandas as pd

    from cnnrnn.config import app_params
    from cnnrnn.registry import application

    entry = application(app)
    root = project_root()
    names = model_names(app_params(app, root))
    if model is not None and model not in names:
        raise UserError(f"{app}.models has no {model!r}; choose one of: {', '.join(names) or '(one model: drop --model)'}")
    keep = [n for n in names if n != model] if model else []
    work_dir = Path(work_dir or root / ".sweeps" / (f"{app}_{model}" if model else app))
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{work_dir / 'mlflow.db'}")
    work_dir.mkdir(parents=True, exist_ok=True)
    output = output or root / "benchmarks" / "sweeps" / (f"{app}_{model}.csv" if model else f"{app}.csv")
    output.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    points = grid_points(parse_grid(grid))
    earlier = earlier_rows(output, points)
    for number, point in enumerate(points, 1):
        work = work_dir / point_name(point)
        print(f"cnnrnn sweep: {number}/{len(points)} {point}", file=sys.stderr, flush=True)
        scratch_project(root, work, app, [*overrides, *(f"{k}={v}" for k, v in point.items())], keep)
        seconds = train_point(work, app, model)
        start = time.perf_counter()
        figures = entry.part("evaluate").validate(app_params(app, work), AppPaths(work, app))
        fixed = dict(o.split("=", 1) for o in overrides if "=" in o and not o.startswith(("+", "~")))
        rows.append({**fixed, **point, **_numbers(figures), "train_seconds": round(seconds, 2),
                     "validate_seconds": round(time.perf_counter() - start, 2)})
        table = pd.DataFrame(rows)
        # after every point: an interrupted sweep keeps what it measured; earlier sweeps' rows stay
        pd.concat([earlier, table], ignore_index=True).to_csv(output, index=False)
    result: dict[str, Any] = {"app": app, "model": model, "grid": grid, "overrides": overrides, "table": str(output),
                              "rows": rows}
    if choose_by:
        if choose_by not in table:
            raise UserError(f"--choose-by {choose_by}: validate() gave {', '.join(c for c in table if 'val' in c)}")
        from cnnrnn.reporting import LOWER_IS_BETTER

        lower_is_better = any(w in choose_by for w in LOWER_IS_BETTER)
        best = table[choose_by].idxmin() if lower_is_better else table[choose_by].idxmax()
        result["chosen"] = {k: rows[best][k] for k in points[0]}
        result["chosen_by"] = f"{'lowest' if lower_is_better else 'highest'} {choose_by} = {rows[best][choose_by]}"
    return result


def seeds(app: str, seed_values: list[int], overrides: list[str], work_dir: Path | None = None,
          output: Path | None = None, with_project_run: bool = False) -> dict[str, Any]:
    """Train and evaluate with each seed on the project's prepared split (the test set stays the same).

    ``with_project_run``: also count the project's own ``metrics/<app>.json`` as the run of its seed (the
    pipeline trained it on this split with the same params), instead of training that seed again.
    """
    import pandas as pd

    from cnnrnn import stages
    from cnnrnn.config import load_params

    root = project_root()
    work_dir = Path(work_dir or root / ".sweeps" / f"{app}_seeds")
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{work_dir / 'mlflow.db'}")
    rows = []
    if with_project_run:
        if overrides:
            raise UserError("--with-project-run counts the pipeline's own run: it cannot take overrides")
        project_seed = load_params(root)["seed"]
        rows.append({"seed": project_seed, **_numbers(json.loads(AppPaths(root, app).metrics.read_text()))})
        seed_values = [s for s in seed_values if s != project_seed]
    for seed in seed_values:
        print(f"cnnrnn seeds: {app} seed {seed}", file=sys.stderr, flush=True)
        # `seed` also draws the split at prepare; the symlinked prepared data keeps the project's split.
        work = scratch_project(root, work_dir / f"seed={seed}", app, [*overrides, f"seed={seed}"], [])
        stages.train(app, work)
        rows.append({"seed": seed, **_numbers(stages.evaluate(app, work))})
    table = pd.DataFrame(rows)
    metric_columns = [c for c in table if c != "seed" and not is_timing(c) and "_ci95_" not in c]
    summary = {c: {"mean": round(float(table[c].mean()), 4),
                   "sd": round(float(statistics.stdev(table[c])) if len(table) > 1 else 0.0, 4)} for c in metric_columns}
    output = output or root / "benchmarks" / "seeds" / f"{app}.csv"
    output.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(output, index=False)
    return {"app": app, "seeds": [int(r["seed"]) for r in rows], "table": str(output), "mean_sd": summary}
