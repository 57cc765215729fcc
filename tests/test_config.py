"""The configuration: every conf/ option composes, params.yaml stays in sync, unknown keys are caught."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cnnrnn.config import app_params, compose, load_params, write_params
from cnnrnn.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
OPTIONS = sorted((p.parent.parent.name, p.parent.name, p.stem) for p in (ROOT / "conf").glob("*/*/*.yaml"))


def test_committed_params_yaml_matches_conf():
    """plain `dvc repro` does not recompose params.yaml, so the committed one must equal what conf/ composes to."""
    assert load_params(ROOT) == compose([], ROOT), "params.yaml is stale: run `cnnrnn params` and commit it"


@pytest.mark.parametrize("app,group,option", OPTIONS)
def test_every_option_composes_and_validates(app, group, option, project_copy):
    several = group == "model" and "models" in compose([], ROOT)[app]
    if several:  # each model is an option of the model group placed at <app>.models.<name>
        name = next(iter(compose([], ROOT)[app]["models"]))
        params = compose([f"{app}/model@{app}.models.{name}={option}"], project_copy)
        assert params[app]["models"][name]["name"] == option
    else:
        params = compose([f"{app}/{group}={option}"], project_copy)
        assert params[app][group]["name"] == option
    write_params(params, project_copy)
    section = app_params(app, project_copy)
    chosen = section["models"][name] if several else section[group]
    assert chosen["name"] == option and "seed" in section


def test_value_override_reaches_params():
    params = compose(["classify.train.max_epochs=3", "seed=7"], ROOT)
    assert params["classify"]["train"]["max_epochs"] == 3 and params["seed"] == 7


def test_unknown_key_override_is_a_clear_error():
    with pytest.raises(UserError, match="max_epoch"):
        compose(["classify.train.max_epoch=3"], ROOT)


def test_unknown_option_is_a_clear_error():
    with pytest.raises(UserError, match="imagenet"):
        compose(["classify/data=imagenet"], ROOT)


def test_added_key_in_params_yaml_names_the_key_and_the_conf_file(project_copy):
    """`+key=value` gets past Hydra; the stage still refuses a key no conf/ file defines."""
    write_params(compose(["+classify.train.momentum=0.9"], project_copy), project_copy)
    with pytest.raises(UserError) as err:
        app_params("classify", project_copy)
    assert "classify.train.momentum" in str(err.value) and "conf/classify/train/default.yaml" in str(err.value)


def test_missing_key_in_params_yaml_is_reported(project_copy):
    params = compose([], project_copy)
    del params["classify"]["model"]["dropout"]
    write_params(params, project_copy)
    with pytest.raises(UserError, match="classify.model.dropout"):
        app_params("classify", project_copy)


def test_stage_with_unknown_key_exits_nonzero_with_one_line(project_copy, cli_env):
    params = yaml.safe_load((project_copy / "params.yaml").read_text())
    params["classify"]["data"]["colour"] = "blue"
    write_params(params, project_copy)
    done = subprocess.run([sys.executable, "-m", "cnnrnn.cli", "prepare", "classify"], cwd=project_copy,
                          capture_output=True, text=True, env=cli_env)
    assert done.returncode == 1
    assert "unknown config key 'classify.data.colour'" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_compose_check_cli(cli_env):
    done = subprocess.run([sys.executable, "-m", "cnnrnn.cli", "params", "--check"], cwd=ROOT,
                          capture_output=True, text=True, env=cli_env)
    assert done.returncode == 0, done.stderr
