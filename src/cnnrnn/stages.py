"""The pipeline's stages, generic over applications: fetch -> prepare -> train -> evaluate, then report.

Each stage reads ``params.yaml`` (validated against ``conf/``), works in the application's
folders (:class:`~cnnrnn.paths.AppPaths`), and dispatches to the application's parts named in
:mod:`cnnrnn.registry` (its ``data``, ``model`` through :mod:`cnnrnn.training`, ``evaluate``
through :mod:`cnnrnn.evaluation`). ``dvc.yaml`` declares which files flow between them.
Fetch and prepare import neither Lightning nor MLflow.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from cnnrnn.atomic import StagedOutputs, kill_point, recover_all, remove_leftovers, repair_dir, replace_dir
from cnnrnn.config import app_params, project_root
from cnnrnn.errors import UserError
from cnnrnn.paths import AppPaths, ModelPaths, StagedPaths, model_names, model_params
from cnnrnn.registry import application


def default_data_option(app: str, root: Path) -> str:
    """The ``<app>/data`` option conf/config.yaml chooses by default (the offline, embedded data)."""
    import yaml

    defaults = (yaml.safe_load((root / "conf" / "config.yaml").read_text()) or {}).get("defaults", [])
    return next((d[f"{app}/data"] for d in defaults if isinstance(d, dict) and f"{app}/data" in d), "?")


def fetch(app: str, root: Path | None = None) -> dict[str, Any]:
    """Download / extract the raw files of ``<app>.data.source`` into ``data/<app>/raw``."""
    from cnnrnn.fetching import fetch_sources, source_parts

    entry = application(app)
    paths = AppPaths(root or project_root(), app)
    finish_interrupted_commits(paths.root)
    params = app_params(app, paths.root)
    paths.raw.parent.mkdir(parents=True, exist_ok=True)
    source = params["data"]["source"]
    repair_dir(paths.raw)
    # Reuse verified files of this source already in raw/ (and any .part to resume); swap in only a complete set.
    staging = Path(tempfile.mkdtemp(prefix=".raw-", dir=paths.raw.parent))
    try:
        keep_partial_downloads(paths.raw.parent, staging)
        for name in (n for part in source_parts(source).values() for n in part.get("files") or {}):
            if (paths.raw / name).is_file():
                shutil.copy2(paths.raw / name, staging / name)
        hint = (f"use the embedded default data (`-S '{app}/data={default_data_option(app, paths.root)}'`) "
                f"or a local directory source (`-S '{app}.data.source.kind=directory'`)")
        record = fetch_sources(source, staging, offline_hint=hint)
        complete_fetch = getattr(entry.part("data"), "complete_fetch", None)
        if complete_fetch is not None:  # e.g. detect's COCO subset: choose images, then download only those
            complete_fetch(params, staging)
        for p in staging.glob("*.part"):
            p.unlink()
        shutil.rmtree(paths.raw.parent / ".partial", ignore_errors=True)
        kill_point("fetch:staged")
        replace_dir(staging, paths.raw)
    except BaseException:
        # Keep partial downloads next to the old raw/ so the next fetch resumes them.
        for part in staging.glob("*.part"):
            keep = paths.raw.parent / ".partial" / part.name
            keep.parent.mkdir(exist_ok=True)
            os.replace(part, keep)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return record


def keep_partial_downloads(folder: Path, staging: Path) -> None:
    """Move the partial downloads (``*.part``) an interrupted fetch left into ``staging``, so this fetch resumes them.

    An exception leaves them in ``<folder>/.partial/``; a kill (SIGKILL, power loss) leaves them in its own
    staging folder ``<folder>/.raw-*``, which goes once its parts are saved.
    """
    leftovers = [p for p in folder.glob(".raw-*") if p != staging]
    for source in [folder / ".partial", *leftovers]:
        for part in source.glob("*.part") if source.is_dir() else []:
            os.replace(part, staging / part.name)
    for leftover in leftovers:
        shutil.rmtree(leftover, ignore_errors=True)


def prepare(app: str, root: Path | None = None) -> dict[str, Any]:
    """Turn ``data/<app>/raw`` into ``data/<app>/prepared`` (tensors, manifest, info)."""
    entry = application(app)
    paths = AppPaths(root or project_root(), app)
    finish_interrupted_commits(paths.root)
    params = app_params(app, paths.root)
    if not paths.raw.is_dir():
        raise UserError(f"{paths.raw} not found; run `cnnrnn fetch {app}` (or `dvc repro {app}_prepare`) first")
    repair_dir(paths.prepared)
    remove_leftovers(paths.prepared.parent, ".prepared-")  # a killed prepare's half-written folder
    staging = Path(tempfile.mkdtemp(prefix=".prepared-", dir=paths.prepared.parent))
    try:
        info = entry.part("data").prepare(params, paths.raw, staging)
        kill_point("prepare:staged")
        replace_dir(staging, paths.prepared)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return info


def train(app: str, root: Path | None = None, model: str | None = None) -> dict[str, Any]:
    """Train the application's model, or each of its ``<app>.models`` (only ``model`` if given)."""
    application(app)
    paths = AppPaths(root or project_root(), app)
    finish_interrupted_commits(paths.root)
    params = app_params(app, paths.root)
    if not (paths.prepared / "info.json").is_file():
        raise UserError(f"{paths.prepared} is not prepared; run `cnnrnn prepare {app}` first")
    from cnnrnn.training import train as train_app

    names = model_names(params)
    if not names:
        if model is not None:
            raise UserError(f"{app} trains one model; drop --model")
        return train_app(app, params, paths)
    if model is not None and model not in names:
        raise UserError(f"{app}.models has no {model!r}; choose one of: {', '.join(names)}")
    return {name: train_app(app, model_params(params, name), ModelPaths(paths.root, app, name))
            for name in ([model] if model else names)}


def evaluate(app: str, root: Path | None = None) -> dict[str, Any]:
    """Measure the trained model(s) on the held-out test split: ``metrics/<app>.json``, ``plots/<app>/``, MLflow."""
    application(app)
    paths = AppPaths(root or project_root(), app)
    finish_interrupted_commits(paths.root)
    params = app_params(app, paths.root)
    for name in model_names(params) or [None]:
        model_dir = ModelPaths(paths.root, app, name).model_dir if name else paths.model_dir
        if not (model_dir / "train_summary.json").is_file():
            raise UserError(f"no trained model in {model_dir}; run `cnnrnn train {app}` first")
    from cnnrnn.evaluation import evaluate as evaluate_app

    # metrics, plots and other outputs are written under a staging folder, then moved into place together
    with StagedOutputs(paths.root, f"{app}_evaluate", application(app).evaluate_outs) as outputs:
        return evaluate_app(app, params, StagedPaths(paths.root, app, staging=outputs.staging), finish=outputs.commit)


def report(root: Path | None = None) -> Path:
    from cnnrnn.reporting import write_report

    root = root or project_root()
    finish_interrupted_commits(root)
    return write_report(root)


def finish_interrupted_commits(root: Path) -> None:
    """A stage killed while moving its outputs into place (see :mod:`cnnrnn.atomic`) is finished first (by the one
    process of a distributed training that writes files)."""
    from cnnrnn.tracking import is_rank_zero

    if not is_rank_zero():
        return
    for stage in recover_all(root):
        print(f"cnnrnn: finished moving the outputs of {stage} into place (it was killed while doing so)", file=sys.stderr)
