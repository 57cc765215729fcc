"""Sharing a project: a DVC remote gives a teammate results, not chores; datasets are taken by `dvc get`."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from cnnrnn.config import compose, write_params
from cnnrnn.registry import tiny_overrides
from conftest import commit_all
from conftest import run_ok as run

def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_after_push_a_fresh_clone_pulls_and_reruns_nothing(tiny_pipeline, tmp_path):
    """The session's tiny pipeline (every stage run once), pushed with the run cache: a fresh clone pulls and
    `dvc repro` reports every one of its stages unchanged."""
    root, cli_env = tiny_pipeline.root, tiny_pipeline.env
    remote = tmp_path / "remote"
    run(["dvc", "remote", "add", "-f", "-d", "team", str(remote)], root, cli_env)
    commit_all(root, cli_env, "a default remote")
    start = time.perf_counter()
    run(["dvc", "push", "--run-cache"], root, cli_env)
    pushed = time.perf_counter() - start
    assert folder_bytes(remote) > 0

    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(root), str(clone)], tmp_path, cli_env)
    start = time.perf_counter()
    run(["dvc", "pull"], clone, cli_env)
    pulled = time.perf_counter() - start
    assert (clone / "models/classify/model.pt").is_file()
    again = run(["dvc", "repro"], clone, cli_env).stdout
    assert "Running stage" not in again
    stages = [line for line in again.splitlines() if line.startswith("Stage '")]
    listed = run(["dvc", "stage", "list"], clone, cli_env).stdout.strip().splitlines()
    assert len(stages) == len(listed) and all(line.endswith("didn't change, skipping") for line in stages), again
    print(f"push {folder_bytes(remote) / 1e6:.1f} MB in {pushed:.1f} s, pull in {pulled:.1f} s, {len(stages)} stages unchanged")

    # Another project takes the prepared dataset from this repository (its default remote holds the files).
    run(["dvc", "get", str(root), "data/classify/prepared", "-o", str(tmp_path / "taken")], tmp_path, cli_env)
    assert (tmp_path / "taken/info.json").is_file() and (tmp_path / "taken/test.pt").is_file()


@pytest.fixture
def sftp_server(tmp_path):
    """A real SSH/SFTP server (asyncssh, which dvc-ssh itself uses) on 127.0.0.1 in a thread: yields (port, client key
    file, HOME whose ~/.ssh/known_hosts names the server's host key)."""
    import asyncio
    import threading

    import asyncssh

    host_key, client_key = asyncssh.generate_private_key("ssh-ed25519"), asyncssh.generate_private_key("ssh-ed25519")
    key_file = tmp_path / "id_ed25519"
    client_key.write_private_key(str(key_file))
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder = {}

    async def serve():
        holder["server"] = await asyncssh.create_server(
            asyncssh.SSHServer, "127.0.0.1", 0, server_host_keys=[host_key],
            authorized_client_keys=asyncssh.import_authorized_keys(client_key.export_public_key().decode()),
            sftp_factory=True)
        started.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(serve()), loop.run_forever()), daemon=True)
    thread.start()
    assert started.wait(60)
    port = holder["server"].sockets[0].getsockname()[1]
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh/known_hosts").write_text(f"[127.0.0.1]:{port} {host_key.export_public_key().decode().strip()}\n")
    try:
        yield port, key_file, home
    finally:
        loop.call_soon_threadsafe(holder["server"].close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def test_an_ssh_remote_through_dvc_ssh(project_copy, cli_env, tmp_path, sftp_server):
    """Push to and pull from an SSH remote served by a real SFTP server; the key and host key are checked."""
    port, key_file, home = sftp_server
    env = {**cli_env, "HOME": str(home)}
    root = project_copy
    write_params(compose(tiny_overrides(["classify"]), root), root)
    run(["git", "init", "-q"], root, env)
    run(["dvc", "repro", "classify_prepare"], root, env)
    remote = tmp_path / "ssh-remote"
    remote.mkdir()
    run(["dvc", "remote", "add", "--local", "-d", "team", f"ssh://127.0.0.1:{port}{remote}"], root, env)
    run(["dvc", "remote", "modify", "--local", "team", "keyfile", str(key_file)], root, env)  # a key stays out of git
    run(["dvc", "push"], root, env)
    assert folder_bytes(remote) > 0

    prepared = root / "data/classify/prepared"
    expected = {p.name: p.read_bytes() for p in prepared.iterdir()}
    shutil.rmtree(root / ".dvc/cache")
    shutil.rmtree(prepared)
    run(["dvc", "pull", "classify_prepare"], root, env)
    assert {p.name: p.read_bytes() for p in prepared.iterdir()} == expected


def test_a_queued_sweep_runs_and_shows_in_dvc_and_mlflow(project_copy, cli_env):
    """`dvc exp run --queue -S` with a grid, run by `dvc queue start`: two experiments in `dvc exp show` and in MLflow."""
    import csv
    import io
    import sys

    root = project_copy
    tiny = tiny_overrides(["classify"])
    write_params(compose(tiny, root), root)
    commit_all(root, cli_env)
    # DVC recomposes params.yaml from conf/ for each experiment: the tiny settings go along as overrides
    overrides = [a for o in tiny for a in ("-S", o)]
    run(["dvc", "exp", "run", "--queue", *overrides, "-S", "classify.train.lr=0.001,0.003", "classify_evaluate"],
        root, cli_env)
    run(["dvc", "queue", "start", "-j", "1"], root, cli_env)
    try:
        deadline = time.monotonic() + 900
        while True:
            status = run(["dvc", "queue", "status"], root, cli_env).stdout
            if "Queued" not in status and "Running" not in status:
                break
            assert time.monotonic() < deadline, status
            time.sleep(2)
    finally:
        subprocess.run(["dvc", "queue", "stop", "--kill"], cwd=root, env=cli_env, capture_output=True)
    assert status.count("Success") == 2, status
    shown = list(csv.DictReader(io.StringIO(run(["dvc", "exp", "show", "--csv"], root, cli_env).stdout)))
    lrs = {row["classify.train.lr"] for row in shown if row.get("Experiment") and row.get("test_accuracy")}
    assert lrs == {"0.001", "0.003"}, shown

    table = subprocess.run([sys.executable, "-m", "cnnrnn.cli", "compare", "classify", "--sort", "test_accuracy", "--csv"],
                           cwd=root, env=cli_env, capture_output=True, text=True)
    assert table.returncode == 0, table.stderr
    rows = list(csv.DictReader(io.StringIO(table.stdout)))
    assert len(rows) == 2 and all(r["experiment"] for r in rows) and {r["train.lr"] for r in rows} == {"0.001", "0.003"}
    assert list(rows[0])[:6] == ["run_id", "start_time", "status", "experiment", "commit", "stage"]
    assert "train.max_epochs" not in rows[0]  # only the params that differ
    accuracies = [float(r["test_accuracy"]) for r in rows]
    assert accuracies == sorted(accuracies, reverse=True)  # best first
