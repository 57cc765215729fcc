"""`cnnrnn bench sweep` chooses on validation only; `cnnrnn bench seeds` keeps the project's test split."""

from __future__ import annotations

import json
import re
import subprocess

import pandas as pd

from cnnrnn.registry import APPLICATIONS


def test_sweep_records_validation_figures_only_and_seeds_keep_the_split(project_copy, cli_env):
    def cnnrnn(*args):
        done = subprocess.run(["cnnrnn", *args], cwd=project_copy, env=cli_env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
        if args[0] != "bench":
            return done.stdout
        return done.stdout[re.search(r"^\{", done.stdout, re.M).start():]  # after Lightning's progress bars

    cnnrnn("fetch", "classify")
    cnnrnn("prepare", "classify")
    tiny = list(APPLICATIONS["classify"].tiny)
    out = cnnrnn("bench", "sweep", "classify", *tiny, "--grid", "classify.model.hidden=16,24",
                 "--choose-by", "val_accuracy")
    result = json.loads(out)
    table = pd.read_csv(project_copy / "benchmarks" / "sweeps" / "classify.csv")
    assert list(table["classify.model.hidden"]) == [16, 24]
    assert "val_accuracy" in table
    assert not [c for c in table if "test" in c], "a sweep must never measure the test split"
    assert result["chosen"]["classify.model.hidden"] in ("16", "24")
    assert result["chosen_by"].startswith("highest val_accuracy")

    # A second run reuses the trained points (same params): no training happens again.
    stamp = project_copy / ".sweeps" / "classify" / "classify.model.hidden=16"
    assert not stamp.exists()  # point names drop the application's prefix
    first = sorted((project_copy / ".sweeps" / "classify").glob("*/models/classify/train_summary.json"))
    assert len(first) == 2
    mtimes = [p.stat().st_mtime_ns for p in first]
    cnnrnn("bench", "sweep", "classify", *tiny, "--grid", "classify.model.hidden=16,24")
    assert [p.stat().st_mtime_ns for p in first] == mtimes
    assert len(pd.read_csv(project_copy / "benchmarks" / "sweeps" / "classify.csv")) == 2  # re-measured, not doubled

    out = cnnrnn("bench", "seeds", "classify", *tiny, "--seeds", "1", "2")
    seeds = pd.read_csv(project_copy / "benchmarks" / "seeds" / "classify.csv")
    assert list(seeds["seed"]) == [1, 2] and "test_accuracy" in seeds
    assert len(set(seeds["n_test"])) == 1
    work = project_copy / ".sweeps" / "classify_seeds"
    for seed in (1, 2):  # the project's prepared split, not one drawn by the seed
        assert (work / f"seed={seed}" / "data" / "classify" / "prepared").is_symlink()
    summary = json.loads(out)["mean_sd"]
    assert set(summary["test_accuracy"]) == {"mean", "sd"}


def test_a_sweep_on_other_axes_keeps_the_earlier_rows(tmp_path):
    from cnnrnn.sweep import earlier_rows

    table = tmp_path / "keyboard_word.csv"
    pd.DataFrame({"epochs": [7, 8], "dropout": [0.15, 0.25], "val_top3_accuracy": [0.341, 0.345]}).to_csv(table, index=False)
    assert len(earlier_rows(table, [{"hidden": "384"}, {"hidden": "768"}])) == 2   # other axes: all kept
    kept = earlier_rows(table, [{"epochs": "8", "dropout": "0.25"}])                  # the same point: measured again
    assert list(kept["epochs"]) == ["7"]
    assert earlier_rows(tmp_path / "none.csv", [{"hidden": "1"}]).empty
