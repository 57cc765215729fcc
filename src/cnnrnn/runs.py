"""The runs MLflow recorded, for a team: compare them (``cnnrnn compare``), promote a model (``cnnrnn promote``).

Both read the tracking store of :mod:`cnnrnn.tracking` (``$MLFLOW_TRACKING_URI``, else the project's
``mlflow.db``), which also holds the runs of ``dvc exp run`` experiments (tagged ``dvc_exp_name``).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from cnnrnn.errors import UserError
from cnnrnn.pipeline import REPORT_ONLY
from cnnrnn.paths import AppPaths, ModelPaths
from cnnrnn.registry import application
from cnnrnn.reporting import LOWER_IS_BETTER

CHAMPION = "champion"
SHOWN_TAGS = {"tags.dvc_exp_name": "experiment", "tags.git_commit": "commit", "tags.cnnrnn.stage": "stage"}


def lower_is_better(metric: str, bars: dict[str, str]) -> bool:
    """Whether a smaller ``metric`` is the better one: its bar says ``<=``/``<``, or its name is a loss or perplexity."""
    bar = bars.get(metric.removeprefix("metrics."), "")
    return bar.startswith("<") or any(word in metric for word in (*LOWER_IS_BETTER, "ratio", "seconds"))


def runs_table(app: str, root: Path, stage: str = "evaluate", sort: str | None = None, all_metrics: bool = False):
    """The runs of ``app``'s ``stage`` as a DataFrame, newest first (or best first by ``sort``): experiment, commit,
    the params that differ between them, and the metrics (the headline, baseline and bars unless ``all_metrics``)."""
    from cnnrnn import tracking
    from cnnrnn.config import load_params

    entry = application(app)
    mlflow = tracking.configure(root, app)
    runs = mlflow.search_runs(experiment_names=[app], filter_string=f"tags.`cnnrnn.stage` = '{stage}'",
                              order_by=["attributes.start_time DESC"])
    if runs.empty:
        raise UserError(f"no {stage} runs of {app} in {tracking.tracking_uri(root)}; run `dvc repro {app}_{stage}` "
                        f"(or `dvc exp run`) first")
    bars = (load_params(root).get(app, {}).get("evaluate", {}).get("quality_bars", {})
            if (root / "params.yaml").is_file() else {})
    report_only = tuple(f"params.evaluate.{k}." for k in REPORT_ONLY)  # notes and bars change no run's result
    params = [c for c in runs.columns if c.startswith("params.") and not c.startswith(report_only)
              and runs[c].astype(str).nunique(dropna=False) > 1]
    wanted = [entry.headline, entry.baseline, *bars] if not all_metrics else []
    metrics = [c for c in runs.columns if c.startswith("metrics.")
               and (all_metrics or c.removeprefix("metrics.") in wanted) and runs[c].notna().any()]
    if sort is not None:
        key = sort if sort.startswith("metrics.") else f"metrics.{sort}"
        if key not in runs.columns:
            known = ", ".join(sorted(c.removeprefix("metrics.") for c in runs.columns if c.startswith("metrics.")))
            raise UserError(f"--sort {sort}: no such metric in the {stage} runs of {app}; choose one of: {known}")
        runs = runs.sort_values(key, ascending=lower_is_better(key, bars), na_position="last", kind="stable")
        if key not in metrics:
            metrics.insert(0, key)
    table = runs[["run_id", "start_time", "status", *SHOWN_TAGS, *params, *metrics]].copy()
    table["run_id"] = table["run_id"].str[:8]
    table["tags.git_commit"] = table["tags.git_commit"].str[:8]
    table["start_time"] = table["start_time"].dt.strftime("%Y-%m-%d %H:%M")
    table = table.rename(columns={**SHOWN_TAGS, **{c: c.removeprefix("params.") for c in params},
                                  **{c: c.removeprefix("metrics.") for c in metrics}})
    return table.reset_index(drop=True)


def trained_run(app: str, root: Path, model: str | None = None) -> tuple[str, Path]:
    """The MLflow run that trained the model now in ``models/<app>/`` (or ``models/<app>/<model>/``), and that folder."""
    entry = application(app)
    if entry.several_models:
        from cnnrnn.config import app_params

        names = list(app_params(app, root).get("models") or {})
        model = model or app_params(app, root)["evaluate"].get("primary_model", names[0])
        if model not in names:
            raise UserError(f"{app} has no model {model!r}; choose one of: {', '.join(names)}")
        model_dir = ModelPaths(root, app, model).model_dir
    elif model:
        raise UserError(f"{app} trains one model; drop --model")
    else:
        model_dir = AppPaths(root, app).model_dir
    summary = model_dir / "train_summary.json"
    if not summary.is_file():
        raise UserError(f"no trained model in {model_dir}; run `dvc repro {app}_evaluate` first")
    run_id = json.loads(summary.read_text()).get("run_id")
    if not run_id:
        raise UserError(f"{summary} names no MLflow run; train it again with `cnnrnn train {app}`")
    return run_id, model_dir


def promote(app: str, root: Path, model: str | None = None, alias: str = CHAMPION) -> dict[str, Any]:
    """Register the evaluated model of ``app`` in the MLflow Model Registry (registered model ``app``), its metrics
    (``metrics/<app>.json``) as tags of the version, and point ``alias`` at it."""
    from cnnrnn import tracking

    metrics_path = AppPaths(root, app).metrics
    if not metrics_path.is_file():
        raise UserError(f"{metrics_path} not found: promote only an evaluated model; run `dvc repro {app}_evaluate`")
    run_id, _ = trained_run(app, root, model)
    mlflow = tracking.configure(root, app)
    client = mlflow.MlflowClient()
    try:
        run = client.get_run(run_id)
    except Exception as err:  # MLflow raises its own types for a run it does not have
        raise UserError(f"run {run_id} (models/{app}) is not in {tracking.tracking_uri(root)}: was it trained with "
                        f"another MLFLOW_TRACKING_URI?") from err
    if run.info.status != "FINISHED":
        raise UserError(f"run {run_id} ended {run.info.status}: only a finished training has a model to promote")
    metrics = json.loads(metrics_path.read_text())
    version = mlflow.register_model(f"runs:/{run_id}/model", app)
    for key, value in metrics.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            client.set_model_version_tag(app, version.version, key, str(value))
    client.set_model_version_tag(app, version.version, "git_commit", run.data.tags.get("git_commit", ""))
    client.set_registered_model_alias(app, alias, version.version)
    return {"model": app, "version": version.version, "alias": alias, "run_id": run_id,
            "uri": f"models:/{app}@{alias}"}


def download_model(uri: str, app: str, root: Path) -> Path:
    """The model folder (what ``models/<app>/`` holds) of an MLflow model URI such as ``models:/classify@champion``."""
    from cnnrnn import tracking

    mlflow = tracking.configure(root, app)
    target = Path(tempfile.mkdtemp(prefix="cnnrnn-model-"))
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(target)))
    except Exception as err:  # not found, no such alias, unreachable server: all mean the same to a user
        raise UserError(f"cannot load {uri} from {tracking.tracking_uri(root)} ({type(err).__name__}: "
                        f"{str(err).splitlines()[0]}); `cnnrnn promote {app}` registers one") from err
    import yaml

    flavor = (yaml.safe_load((local / "MLmodel").read_text()) or {}).get("flavors", {}).get("python_function", {})
    made_for = (flavor.get("config") or {}).get("app")  # the model_config that cnnrnn.pyfunc.log_model writes
    if made_for != app:
        raise UserError(f"{uri} is not a {app} model (its MLmodel names {made_for!r})")
    folders = [p.parent for p in (local / "artifacts").rglob("model.pt")]
    if not folders:
        raise UserError(f"{uri} holds no model.pt; is it a cnnrnn model?")
    return folders[0]

