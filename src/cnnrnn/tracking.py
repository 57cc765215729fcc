"""MLflow tracking shared by every application: one URI, one experiment per application.

The tracking URI is ``$MLFLOW_TRACKING_URI`` if set, else ``sqlite:///<project root>/mlflow.db``
(view it with ``mlflow ui --backend-store-uri sqlite:///mlflow.db``). Artifacts go to
``<project root>/mlruns/``. Runs carry the git commit, the DVC experiment name (set by
``dvc exp run``), the stage, the data source with its checksum, and the machine's fingerprint
(``machine.*``: CPU, the instruction set and threads in use, library versions).

A run is never left ``RUNNING`` for ever: each stage records which process writes its run
(``owner_file``), and the stage's next start marks ``KILLED`` a run whose process died on this host
(:func:`close_dead_run`); Ctrl-C ends a run ``KILLED``, an error ``FAILED``. A killed training that
``dvc repro`` then restores from DVC's run cache never starts again, so every ``cnnrnn`` stage and the commands
that show results (``summary``, ``compare``, ``report``) first look for such orphans
(:func:`orphaned_records`, plain files, no MLflow) and, if there are any, close them in a child process
(``python -m cnnrnn.tracking``), so a stage that must not load MLflow does not.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

from cnnrnn.atomic import write_json_atomically
from cnnrnn.errors import UserError


def store_root(root: Path) -> Path:
    """The project whose ``mlflow.db`` records a run.

    ``dvc exp run --temp`` / ``--queue`` run stages in a throw-away copy under
    ``<project>/.dvc/tmp/exps/``; their runs belong to the real project, not to the copy.
    """
    parts = root.resolve().parts
    for i in range(len(parts) - 2):
        if parts[i:i + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:i])
    return root


def tracking_uri(root: Path) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{store_root(root) / 'mlflow.db'}"


def is_rank_zero() -> bool:
    """True in the one process that should log (always, unless launched for distributed training)."""
    for variable in ("RANK", "SLURM_PROCID", "PMI_RANK", "OMPI_COMM_WORLD_RANK"):
        if variable in os.environ:
            return int(os.environ[variable]) == 0
    return int(os.environ.get("LOCAL_RANK", 0)) == 0 and int(os.environ.get("NODE_RANK", 0)) == 0


def git_commit(root: Path) -> str:
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists become their JSON text."""
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = json.dumps(value) if isinstance(value, (list, tuple)) else value
    return flat


def data_source_tags(info: dict[str, Any]) -> dict[str, str]:
    """Tags naming the dataset, where its files came from, and their checksums."""
    files = info.get("source", {}).get("files", {})
    return {
        "data.dataset": str(info.get("dataset", "unknown")),
        "data.source": "; ".join(f["origin"] for f in files.values()) or "unknown",
        "data.checksum": "; ".join(f["checksum"] for f in files.values()) or "unknown",
    }


def machine_tags() -> dict[str, str]:
    """The machine fingerprint (:func:`cnnrnn.reproducibility.fingerprint`) as ``machine.*`` tags."""
    from cnnrnn.reproducibility import FINGERPRINT_KEY, fingerprint

    return {f"{FINGERPRINT_KEY}.{key}": value for key, value in fingerprint().items()}


def configure(root: Path, app: str):
    """The ``mlflow`` module pointed at the project's tracking store, with experiment ``app`` (created where missing)
    set; a clear error where the store cannot be used. Stages, ``cnnrnn compare`` and ``promote`` all start here."""
    import mlflow

    uri = tracking_uri(root)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per tiny file is noise
    if uri.startswith("file:") or (":" not in uri.split("/")[0] and not uri.startswith("sqlite")):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    mlflow.set_tracking_uri(uri)
    try:
        experiment = mlflow.get_experiment_by_name(app)
        if experiment is None:
            # A local store keeps its artifacts beside it; a tracking server chooses its own location.
            local = uri.startswith(("sqlite:", "file:")) or "://" not in uri
            location = (store_root(root) / "mlruns" / app).as_uri() if local else None
            try:
                mlflow.create_experiment(app, artifact_location=location)
            except mlflow.exceptions.MlflowException as err:  # another stage made it first (two trainings at once)
                if err.error_code != "RESOURCE_ALREADY_EXISTS" and mlflow.get_experiment_by_name(app) is None:
                    raise
        mlflow.set_experiment(app)
    except Exception as err:  # MLflow raises many types for an unusable store; all mean the same to a user
        raise UserError(f"MLflow tracking store {uri} is unusable ({type(err).__name__}: {str(err).splitlines()[0]}); "
                        f"check MLFLOW_TRACKING_URI or move the damaged mlflow.db aside") from err
    return mlflow


def process_started(pid: int) -> str:
    """When process ``pid`` started (clock ticks since boot, from ``/proc``), or "" where unknown: with the pid it
    names one process, not a later one that reused the number."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19]
    except (OSError, IndexError):
        return ""


def is_alive(pid: int, started: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not started or process_started(pid) in ("", started)


def owner_record(run_id: str, uri: str) -> dict[str, Any]:
    """Who writes run ``run_id``: this host and process (see :func:`close_dead_run`)."""
    return {"run_id": run_id, "tracking_uri": uri, "host": socket.gethostname(), "pid": os.getpid(),
            "pid_started": process_started(os.getpid())}


def close_dead_run(record_file: Path, mlflow) -> str | None:
    """Mark ``KILLED`` the run a killed process of this stage left ``RUNNING``; return its id (None if no record).

    ``record_file`` (written by :func:`start_run`) names the run and the process that wrote it. Only that run is
    touched, and only if it was written from this host by a process that is gone, in the same tracking store:
    a live run on a shared tracking server is never changed.
    """
    if record_file is None or not record_file.is_file():
        return None
    try:
        record = json.loads(record_file.read_text())
    except ValueError:
        return None
    if record.get("tracking_uri") != mlflow.get_tracking_uri() or record.get("host") != socket.gethostname():
        return record.get("run_id")
    if is_alive(int(record["pid"]), record.get("pid_started", "")):
        return record.get("run_id")
    client = mlflow.MlflowClient()
    try:
        run = client.get_run(record["run_id"])
    except Exception:  # deleted, or another store
        return None
    if run.info.status == "RUNNING":
        client.set_terminated(run.info.run_id, "KILLED")
        client.set_tag(run.info.run_id, "cnnrnn.killed", f"process {record['pid']} on {record['host']} died without "
                                                          f"ending the run; marked KILLED by the stage's next start")
        print(f"cnnrnn: MLflow run {run.info.run_id} was left RUNNING by a killed process; marked KILLED", file=sys.stderr)
    return record["run_id"]


RECORD_GLOBS = (".cache/checkpoints/*/*/run.json", ".cache/runs/*.json")  # training's, evaluation's


def orphaned_records(root: Path) -> list[Path]:
    """The owner records (:func:`owner_record`) of runs whose process died on this host before ending them: plain
    JSON and ``/proc``, no MLflow. A run that ended (normally, by Ctrl-C or an error) has ``ended`` in its record."""
    found = []
    for path in sorted(p for pattern in RECORD_GLOBS for p in root.glob(pattern)):
        try:
            record = json.loads(path.read_text())
            pid = int(record["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if record.get("ended") or record.get("host") != socket.gethostname():
            continue
        if not is_alive(pid, record.get("pid_started", "")):
            found.append(path)
    return found


def mark_ended(record_file: Path | None, status: str) -> None:
    """Say in the owner record that its run ended (so :func:`orphaned_records` passes it by)."""
    if record_file is None or not record_file.is_file():
        return
    try:
        record = json.loads(record_file.read_text())
    except ValueError:
        return
    write_json_atomically(record_file, {**record, "ended": status})


def close_orphaned_runs(root: Path) -> list[str]:
    """Mark ``KILLED`` every run :func:`orphaned_records` finds (in this process: it loads MLflow); their ids."""
    import mlflow

    closed = []
    for path in orphaned_records(root):
        record = json.loads(path.read_text())
        mlflow.set_tracking_uri(record.get("tracking_uri") or tracking_uri(root))
        run_id = close_dead_run(path, mlflow)
        mark_ended(path, "KILLED")
        if run_id:
            closed.append(run_id)
    return closed


def close_orphans_elsewhere(root: Path) -> None:
    """If :func:`orphaned_records` finds any, close them in a child process (this one does not load MLflow)."""
    if not is_rank_zero() or not orphaned_records(root):
        return
    subprocess.run([sys.executable, "-m", "cnnrnn.tracking", str(root)], check=False)


@contextlib.contextmanager
def start_run(root: Path, app: str, stage: str, params: dict[str, Any], info: dict[str, Any],
              extra_tags: dict[str, str] | None = None, owner_file: Path | None = None,
              on_start=None, close_first: list[Path] = ()) -> Iterator[Any]:
    """An MLflow run for one stage of one application, with params and tags logged.

    Yields the ``mlflow`` module (with the run active), or ``None`` on non-zero ranks of a
    distributed run, which must not log. ``owner_file`` records which process writes the run: a run
    that an earlier, killed process left there ``RUNNING`` is marked ``KILLED`` first
    (:func:`close_dead_run`), and ``on_start(mlflow, previous_run_id)`` is called once the new run is
    active; the runs named by the ``close_first`` records are closed the same way. Ctrl-C ends the run
    ``KILLED``, an error ``FAILED``.
    """
    if not is_rank_zero():
        yield None
        return
    mlflow = configure(root, app)
    for record in close_first:  # e.g. the runs of stale checkpoints, which will never resume
        close_dead_run(record, mlflow)
    previous = close_dead_run(owner_file, mlflow) if owner_file is not None else None
    commit = git_commit(root)
    tags = {
        "cnnrnn.app": app,
        "cnnrnn.stage": stage,
        "git_commit": commit,
        "mlflow.source.git.commit": commit,
        "dvc_exp_name": os.environ.get("DVC_EXP_NAME", ""),
        "dvc_exp_baseline_rev": os.environ.get("DVC_EXP_BASELINE_REV", ""),
        **data_source_tags(info),
        **machine_tags(),
        **(extra_tags or {}),
    }
    run_name = f"{stage}-{os.environ['DVC_EXP_NAME']}" if os.environ.get("DVC_EXP_NAME") else stage
    run = mlflow.start_run(run_name=run_name, tags=tags)
    try:
        if owner_file is not None:
            write_json_atomically(owner_file, owner_record(run.info.run_id, mlflow.get_tracking_uri()))
        mlflow.log_params(flatten(params))
        mlflow.log_dict(params, "config.yaml")
        if on_start is not None:
            on_start(mlflow, previous)
        yield mlflow
    except KeyboardInterrupt:
        mlflow.end_run("KILLED")
        mark_ended(owner_file, "KILLED")
        raise
    except BaseException:
        mlflow.end_run("FAILED")
        mark_ended(owner_file, "FAILED")
        raise
    else:
        mlflow.end_run()
        mark_ended(owner_file, "FINISHED")


if __name__ == "__main__":  # close_orphans_elsewhere's child: python -m cnnrnn.tracking <project root>
    import warnings

    warnings.simplefilter("ignore")
    close_orphaned_runs(Path(sys.argv[1]))  # close_dead_run says which runs it marked
