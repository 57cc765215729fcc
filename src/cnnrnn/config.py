"""Reading the configuration a stage runs with.

Hydra composes ``conf/`` into ``params.yaml`` (DVC does it on ``dvc exp run``, and
``cnnrnn params`` does it by hand). Stages read ``params.yaml`` only, because that is what
DVC tracks. Every section a stage reads is checked against the ``conf/`` file it came from:
each group file carries ``name:`` (its option name), so an unknown or missing key is
reported against the exact file that defines the valid ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from cnnrnn.errors import UserError

PARAMS_FILE = "params.yaml"
CONF_DIR = "conf"
CONFIG_NAME = "config"


def project_root(start: Path | None = None) -> Path:
    """The directory holding ``dvc.yaml`` at or above ``start`` (default: the working directory)."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / "dvc.yaml").is_file():
            return folder
    return start


def load_params(root: Path | None = None) -> dict[str, Any]:
    """Read ``params.yaml`` of the project as plain dicts."""
    root = root or project_root()
    path = root / PARAMS_FILE
    if not path.is_file():
        raise UserError(f"{path} not found: run `cnnrnn params` (or `dvc exp run`) to write it from {CONF_DIR}/")
    with path.open() as f:
        try:
            params = yaml.safe_load(f) or {}
        except yaml.YAMLError as err:
            raise UserError(f"{path} is not valid YAML ({err}); restore it with `cnnrnn params`") from err
    return params


def app_params(app: str, root: Path | None = None) -> dict[str, Any]:
    """The section of ``params.yaml`` for one application, plus the global ``seed``.

    Each group (``data``, ``model``, ``train``, ``evaluate``) is validated against the
    ``conf/<app>/<group>/<name>.yaml`` it claims to come from.
    """
    root = root or project_root()
    params = load_params(root)
    if app not in params:
        raise UserError(f"params.yaml has no section '{app}'; add '{app}/...' defaults to conf/config.yaml and run `cnnrnn params`")
    section = params[app]
    if not isinstance(section, dict):
        raise UserError(f"params.yaml: '{app}' must be a mapping of groups; rewrite it with `cnnrnn params`")
    group_dir = root / CONF_DIR / app
    for group in sorted(p.name for p in group_dir.iterdir() if p.is_dir()) if group_dir.is_dir() else []:
        if group == "model" and group not in section and isinstance(section.get("models"), dict):
            # Several models, each an option of the model group: <app>/model@<app>.models.<name>
            if not section["models"]:
                raise UserError(f"params.yaml: '{app}.models' is empty; it needs at least one model from conf/{app}/model/")
            for name, values in section["models"].items():
                validate_against_conf(values, app, group, root, where=f"{app}.models.{name}")
            continue
        if group not in section:
            raise UserError(f"params.yaml: '{app}.{group}' is missing; run `cnnrnn params` to rewrite params.yaml from conf/")
        validate_against_conf(section[group], app, group, root)
    out = dict(section)
    out["seed"] = params.get("seed", 0)
    return out


def runtime_params(root: Path | None = None) -> dict[str, Any] | None:
    """The ``runtime`` section of ``params.yaml`` (what pins the floating-point path, see
    :mod:`cnnrnn.reproducibility`), checked against ``conf/config.yaml``; ``None`` where the
    directory has no ``params.yaml`` (``cnnrnn predict`` outside a project pins nothing)."""
    from cnnrnn.reproducibility import check_runtime

    root = root or project_root()
    if not (root / PARAMS_FILE).is_file():
        return None
    params = load_params(root)
    config = root / CONF_DIR / f"{CONFIG_NAME}.yaml"
    reference = (yaml.safe_load(config.read_text()) or {}).get("runtime") if config.is_file() else None
    if "runtime" not in params:
        raise UserError(f"params.yaml lacks 'runtime' (defined in {CONF_DIR}/{CONFIG_NAME}.yaml); "
                        f"run `cnnrnn params` to rewrite params.yaml")
    runtime = params["runtime"]
    if not isinstance(runtime, dict):
        raise UserError("params.yaml: 'runtime' must be a mapping (threads, cpu_capability, ...); rewrite it with `cnnrnn params`")
    if reference is not None:
        _compare_keys(runtime, reference, "runtime", Path(CONF_DIR) / f"{CONFIG_NAME}.yaml")
    check_runtime(runtime)
    return runtime


def validate_against_conf(values: dict, app: str, group: str, root: Path, where: str | None = None) -> None:
    """Raise :class:`UserError` if ``values`` has keys the chosen ``conf/`` option lacks, or lacks keys it has."""
    where = where or f"{app}.{group}"
    if not isinstance(values, dict) or "name" not in values:
        raise UserError(f"params.yaml: '{where}' must be a mapping with a 'name' naming a file in conf/{app}/{group}/")
    option = root / CONF_DIR / app / group / f"{values['name']}.yaml"
    if not option.is_file():
        choices = ", ".join(sorted(p.stem for p in option.parent.glob("*.yaml")))
        raise UserError(f"params.yaml: {where}.name = {values['name']!r} has no file {option.relative_to(root)}; choose one of: {choices}")
    with option.open() as f:
        reference = yaml.safe_load(f) or {}
    reference.pop("defaults", None)
    _compare_keys(values, reference, where, option.relative_to(root))


def _compare_keys(values: Any, reference: Any, where: str, option: Path) -> None:
    if not isinstance(reference, dict) or not isinstance(values, dict):
        return
    unknown = sorted(set(values) - set(reference))
    if unknown:
        raise UserError(
            f"unknown config key '{where}.{unknown[0]}' (not in {option}); known keys here: "
            f"{', '.join(sorted(reference))}. Fix the spelling, or add the key to {option} if the code reads it"
        )
    missing = sorted(set(reference) - set(values))
    if missing:
        raise UserError(f"params.yaml lacks '{where}.{missing[0]}' (defined in {option}); run `cnnrnn params` to rewrite params.yaml")
    for key in values:
        _compare_keys(values[key], reference[key], f"{where}.{key}", option)


def compose(overrides: list[str] | None = None, root: Path | None = None) -> dict[str, Any]:
    """Compose ``conf/config.yaml`` with Hydra overrides, as DVC's Hydra integration does."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    root = root or project_root()
    try:
        with initialize_config_dir(config_dir=str(root / CONF_DIR), version_base=None):
            cfg = hydra_compose(config_name=CONFIG_NAME, overrides=list(overrides or []))
    except (HydraException, OmegaConfBaseException) as err:
        raise UserError(f"config: {err}".replace("\n", " ")) from err
    return OmegaConf.to_container(cfg, resolve=True)


def write_params(params: dict[str, Any], root: Path | None = None) -> Path:
    """Write ``params.yaml`` the way DVC does (key order kept), atomically."""
    from cnnrnn.atomic import write_text_atomically

    root = root or project_root()
    return write_text_atomically(root / PARAMS_FILE, yaml.safe_dump(params, sort_keys=False))
