"""A team's MLflow: ``mlflow server`` on a PostgreSQL database, serving the runs' artifacts itself.

    python -m cnnrnn.team_server --data /srv/cnnrnn-runs --host 0.0.0.0 --port 5000 --allowed-hosts runs.example.org:5000

starts PostgreSQL from the ``pgserver`` wheel (``pip install -e '.[team]'``; no root, no system package) in
``DATA/postgres``, then ``mlflow server --backend-store-uri postgresql+psycopg2://... --artifacts-destination
DATA/artifacts``, and stops both on Ctrl-C. Teammates set ``MLFLOW_TRACKING_URI=http://HOST:5000`` and run the
pipeline as usual. With a PostgreSQL of your own, run the one ``mlflow server`` line of the README instead.
The tests start the same pair on 127.0.0.1 (``tests/test_team_mlflow.py``).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import warnings
from pathlib import Path

from cnnrnn.errors import UserError

SERVER_ENV = {
    # mlflow 3 starts a job runner and its worker processes by default: on 2 cores they slow every request ~5x
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    "PYTHONWARNINGS": "ignore:starlette.middleware.wsgi is deprecated",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_postgres(folder: Path):
    """PostgreSQL in ``folder`` (created, or reused) with a database ``mlflow``: (server, SQLAlchemy URI).

    It listens on a Unix socket only. As root, pgserver runs it as a system user ``pgserver`` it creates.
    """
    try:
        with warnings.catch_warnings():  # platformdirs warns at import where XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            import pgserver
    except ImportError as err:
        raise UserError("PostgreSQL for MLflow needs the team extra: pip install -e '.[team]'") from err
    folder.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(folder, cleanup_mode="stop")
    if "(0 rows)" in server.psql("SELECT 1 FROM pg_database WHERE datname = 'mlflow';"):
        server.psql("CREATE DATABASE mlflow;")
    socket_dir = urllib.parse.quote(str(server.get_postmaster_info().socket_dir), safe="/")
    return server, f"postgresql+psycopg2://postgres@/mlflow?host={socket_dir}"


def start_mlflow_server(backend_uri: str, artifacts: Path, host: str = "127.0.0.1", port: int | None = None,
                        log: Path | None = None, allowed_hosts: str | None = None,
                        timeout: float = 180.0) -> tuple[subprocess.Popen, str]:
    """``mlflow server`` in its own process group, once ``/health`` answers: (process, its URL).

    ``allowed_hosts``: the names teammates reach it by (MLflow answers 403 to any Host header but localhost and
    private addresses unless listed), e.g. ``runs.example.org,runs.example.org:5000``.
    """
    port = port or free_port()
    artifacts.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_uri,
               "--artifacts-destination", str(artifacts), "--host", host, "--port", str(port), "--workers", "1"]
    if allowed_hosts:
        command += ["--allowed-hosts", allowed_hosts]
    output = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 (the server inherits it)
    try:
        process = subprocess.Popen(command, env={**os.environ, **SERVER_ENV}, stdout=output, stderr=output,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    finally:
        if log:
            output.close()
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    deadline = time.monotonic() + timeout
    try:
        while True:
            if process.poll() is not None:
                raise UserError(f"mlflow server stopped at start (exit {process.returncode})"
                                + (f"; its log: {log}" if log else ""))
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        return process, url
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise UserError(f"mlflow server did not answer on {url} within {timeout:.0f} s")
            time.sleep(0.2)
    except BaseException:  # an error, Ctrl-C or SIGTERM while waiting: no server left behind in its own session
        stop(process)
        raise


def stop(process: subprocess.Popen) -> None:
    """The server and its workers (its process group): SIGTERM, then SIGKILL after 20 s."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def _write(url: str, experiment_id: str, values: int, folder: str, ready, go, results) -> None:
    """One writer of :func:`round_trips` (a process of its own): a run, ``values`` metrics one call each, an artifact."""
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    import mlflow

    mlflow.set_tracking_uri(url)
    ready.release()
    go.wait()
    seconds = []
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_params({"values": values})
        for step in range(values):
            started = time.perf_counter()
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
            seconds.append(time.perf_counter() - started)
        artifact = Path(folder) / f"{run.info.run_id}.txt"
        artifact.write_text("an artifact\n")
        started = time.perf_counter()
        mlflow.log_artifact(str(artifact))
        results.put({"run_id": run.info.run_id, "metric_seconds": seconds, "artifact_seconds": time.perf_counter() - started})


def round_trips(url: str, writers: int = 2, values: int = 200) -> dict:
    """Milliseconds per ``log_metric`` call (mean, median, 95th percentile, max) and per artifact upload while
    ``writers`` processes log to the server at once; every value is read back to check that none was lost."""
    import multiprocessing
    import tempfile

    import numpy as np
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=url)
    experiment_id = client.create_experiment(f"round-trips-{time.time_ns()}")  # before the writers: no race to create it
    context = multiprocessing.get_context("spawn")
    ready, go, results = context.Semaphore(0), context.Event(), context.Queue()
    with tempfile.TemporaryDirectory() as folder:
        processes = [context.Process(target=_write, args=(url, experiment_id, values, folder, ready, go, results),
                                     daemon=True) for _ in range(writers)]
        try:
            for process in processes:
                process.start()
            for _ in processes:
                if not ready.acquire(timeout=300):  # every writer has imported mlflow
                    raise UserError("a writer of the round-trip benchmark did not start")
            go.set()
            done = [results.get(timeout=600) for _ in processes]
            for process in processes:
                process.join(60)
        finally:
            for process in processes:
                if process.is_alive():
                    process.terminate()
    lost = sum(values - len(client.get_metric_history(d["run_id"], "loss")) for d in done)
    milliseconds = np.array([s for d in done for s in d["metric_seconds"]]) * 1000
    return {"writers": writers, "values_per_writer": values, "values_lost": int(lost),
            "log_metric_ms": {"mean": round(float(milliseconds.mean()), 1), "median": round(float(np.median(milliseconds)), 1),
                              "p95": round(float(np.percentile(milliseconds, 95)), 1), "max": round(float(milliseconds.max()), 1)},
            "log_artifact_ms": [round(d["artifact_seconds"] * 1000, 1) for d in done]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnnrnn.team_server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="folder of the database (postgres/) and artifacts")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=5000, help="port to listen on (default 5000)")
    parser.add_argument("--allowed-hosts", default=None, metavar="NAMES",
                        help="host names teammates use, comma-separated (MLflow refuses other than localhost and "
                             "private addresses), e.g. runs.example.org,runs.example.org:5000")
    parser.add_argument("--bench", type=int, metavar="WRITERS", default=0,
                        help="start, time the round trips of WRITERS processes logging at once, print JSON, stop")
    parser.add_argument("--output", type=Path, help="--bench: also write the JSON here")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # `kill` stops both servers too (the cleanups below)
    try:
        postgres, backend = start_postgres(args.data.resolve() / "postgres")
    except UserError as err:
        print(f"cnnrnn: {err}", file=sys.stderr)
        return 1
    try:
        server, url = start_mlflow_server(backend, args.data.resolve() / "artifacts", args.host, args.port,
                                          log=args.data / "mlflow-server.log", allowed_hosts=args.allowed_hosts)
    except UserError as err:
        postgres.cleanup()
        print(f"cnnrnn: {err}", file=sys.stderr)
        return 1
    except BaseException:
        postgres.cleanup()
        raise
    if args.bench:
        try:
            import json

            from cnnrnn.reproducibility import cpu_model

            result = {**round_trips(url, args.bench), "cpu_model": cpu_model(), "cores": os.cpu_count()}
            print(json.dumps(result, indent=2))
            if args.output:
                args.output.write_text(json.dumps(result, indent=2) + "\n")
        finally:
            stop(server)
            postgres.cleanup()
        return 0
    print(f"MLflow on PostgreSQL: MLFLOW_TRACKING_URI={url} (log: {args.data / 'mlflow-server.log'}); Ctrl-C stops it")
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop(server)
        postgres.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
