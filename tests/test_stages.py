"""Stage-level promises that hold for every application."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_non_training_stages_import_neither_lightning_nor_mlflow(project_copy, cli_env):
    """fetch, prepare and report must stay fast: Lightning and MLflow cost seconds to import."""
    code = (
        "import sys\n"
        "from cnnrnn import stages\n"
        "for app in ('classify', 'sentiment', 'keyboard'):\n"
        "    stages.fetch(app); stages.prepare(app)\n"
        "stages.report()\n"
        "heavy = sorted(m for m in ('pytorch_lightning', 'lightning', 'mlflow') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=project_copy, env=cli_env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout
    assert (project_copy / "data/classify/prepared/manifest.csv").is_file()


def test_unknown_application_is_refused_with_the_choices(cli_env):
    done = subprocess.run([sys.executable, "-m", "cnnrnn.cli", "train", "imagenet"], cwd=ROOT, env=cli_env,
                          capture_output=True, text=True)
    assert done.returncode == 2 and "classify" in done.stderr


def test_stage_out_of_order_says_what_to_run_first(project_copy, cli_env):
    done = subprocess.run([sys.executable, "-m", "cnnrnn.cli", "train", "classify"], cwd=project_copy, env=cli_env,
                          capture_output=True, text=True)
    assert done.returncode == 1 and "cnnrnn prepare classify" in done.stderr and "Traceback" not in done.stderr


def test_runs_of_temporary_dvc_experiments_go_to_the_real_project(tmp_path):
    from cnnrnn.tracking import store_root

    assert store_root(tmp_path / "proj/.dvc/tmp/exps/tmpabc123") == (tmp_path / "proj").resolve()
    assert store_root(tmp_path / "proj") == tmp_path / "proj"
