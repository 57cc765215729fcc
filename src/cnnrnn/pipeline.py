"""``dvc.yaml``, written from the application registry: ``cnnrnn pipeline`` (``--check`` to compare).

Every application gets the same four stages (fetch -> prepare -> train -> evaluate), then one
report stage reads them all. A stage's code dependencies are not listed by hand: they are the
import closure of the modules the stage runs (:data:`STAGE_ROOTS` and the application's part),
computed from the source with :mod:`ast`, so a file that a stage's code imports is always a
dependency, and changing it reruns the stage. Plain text in, plain text out: no Lightning, no MLflow.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import yaml

from cnnrnn.config import load_params
from cnnrnn.registry import APPLICATIONS, Application

# The generic code each stage runs before it dispatches to the application's part (see cnnrnn.stages).
STAGE_ROOTS: dict[str, tuple[str, ...]] = {
    "fetch": ("cnnrnn.fetching",),
    "prepare": (),
    "train": ("cnnrnn.training",),
    "evaluate": ("cnnrnn.evaluation",),
    "report": ("cnnrnn.reporting",),
}
# The application part each stage dispatches to (the registry resolves `cnnrnn.<app>.<part>` at run time).
STAGE_PART = {"fetch": "data", "prepare": "data", "train": "model", "evaluate": "evaluate"}

# Files left out of every stage's deps on purpose: they decide which code runs, where files go, or how
# errors read, never what an output contains. Changing them must not rerun the whole pipeline.
NOT_DEPENDENCIES: dict[str, str] = {
    "src/cnnrnn/__init__.py": "the package's version string",
    "src/cnnrnn/cli.py": "generic dispatch: parses the command line and calls a stage",
    "src/cnnrnn/stages.py": "generic dispatch: finds the application's part in the registry and runs it",
    "src/cnnrnn/registry.py": "generic dispatch: names each application's parts; the stages' roots stand for its imports "
                              "(only the report, which prints each application's summary and reference, lists it)",
    "src/cnnrnn/config.py": "reads params.yaml, which DVC tracks itself through each stage's `params`",
    "src/cnnrnn/paths.py": "where an application's files live; each stage's `outs` name them",
    "src/cnnrnn/errors.py": "the error type users see; messages change no output",
    "src/cnnrnn/atomic.py": "how a finished file replaces the old one (temp file, then rename), not its content",
    "src/cnnrnn/tracking.py": "records a run in MLflow; no DVC output depends on it",
    "src/cnnrnn/pyfunc.py": "logs the trained model to MLflow; no DVC output depends on it",
    "src/cnnrnn/pipeline.py": "writes dvc.yaml, and tells a resumed training which inputs key its checkpoint",
}
# What `dvc plots show` can draw (data it renders, pictures it shows); any other evaluate file is an `outs` the report shows.
PLOT_SUFFIXES = (".csv", ".tsv", ".json", ".yaml", ".yml", ".png", ".jpg", ".jpeg", ".gif", ".svg")
# Keys of <app>.evaluate that only the report reads (the report stage lists them), and the option's name.
REPORT_ONLY = ("quality_bars", "notes", "before")
HEADER = """\
# The pipeline: every application's stages and what flows between them.
# Written by `cnnrnn pipeline` from src/cnnrnn/registry.py: do not edit by hand (a test compares).
# A stage's code deps are the files its code imports, computed from the source.
# `dvc repro` runs what changed; `dvc exp run -S ...` recomposes params.yaml from conf/ first.
"""


def module_file(module: str, src: Path) -> Path | None:
    """The source file of ``cnnrnn.x.y`` under ``src`` (``cnnrnn/x/y.py`` or ``cnnrnn/x/y/__init__.py``), if any."""
    base = src.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path, module: str) -> set[str]:
    """Every ``cnnrnn`` module that ``path`` (the source of ``module``) imports anywhere, in functions too."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from .streams import X
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)  # a submodule, when it is one
    return {name for name in found if name == "cnnrnn" or name.startswith("cnnrnn.")}


def _only_a_docstring(path: Path) -> bool:
    body = ast.parse(path.read_text()).body
    return all(isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) for node in body)


def import_closure(roots: list[str], root: Path) -> list[str]:
    """The source files (``src/cnnrnn/...``, sorted) that importing ``roots`` runs, less :data:`NOT_DEPENDENCIES`
    and packages' ``__init__.py`` files that hold only a docstring."""
    src = root / "src"
    seen: dict[str, Path] = {}
    todo = list(roots)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        path = module_file(module, src)
        if path is None:
            continue  # a name imported from a module, not a module
        seen[module] = path
        parents = [".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)]
        todo.extend(parents + sorted(imported_modules(path, module)))
    files = {p.relative_to(root).as_posix() for p in seen.values()
             if not (p.name == "__init__.py" and _only_a_docstring(p))}
    return sorted(files - set(NOT_DEPENDENCIES))


def defines(module: str, function: str, root: Path) -> bool:
    """Whether ``module`` defines a top-level function ``function`` (read from its source, not imported)."""
    path = module_file(module, root / "src")
    return path is not None and any(isinstance(n, ast.FunctionDef) and n.name == function
                                    for n in ast.parse(path.read_text()).body)


def stage_roots(app: Application, stage: str, root: Path) -> list[str]:
    """The modules a stage of ``app`` runs: the stage's generic code and the application's part."""
    part = app.module_name(STAGE_PART[stage])
    if stage == "fetch" and not defines(part, "complete_fetch", root):
        return list(STAGE_ROOTS[stage])
    return [*STAGE_ROOTS[stage], part]


def _key(app: Application, name: str) -> str:
    return name if name == "seed" else f"{app.name}.{name}"


def _uncached(files: list[str]) -> list[dict[str, dict[str, bool]]]:
    return [{f: {"cache": False}} for f in files]


def app_stages(app: Application, params: dict[str, Any], root: Path) -> dict[str, dict[str, Any]]:
    """The four stages of one application, as ``dvc.yaml`` writes them."""
    name, section = app.name, params[app.name]
    deps = {stage: import_closure(stage_roots(app, stage, root), root) for stage in STAGE_PART}
    stages: dict[str, dict[str, Any]] = {
        f"{name}_fetch": {"cmd": f"cnnrnn fetch {name}", "deps": deps["fetch"],
                          "params": [_key(app, p) for p in app.fetch_params], "outs": [f"data/{name}/raw"]},
        f"{name}_prepare": {"cmd": f"cnnrnn prepare {name}", "deps": [f"data/{name}/raw", *deps["prepare"]],
                            "params": [_key(app, p) for p in app.prepare_params], "outs": [f"data/{name}/prepared"]},
    }
    if app.several_models:
        stages[f"{name}_train"] = {"foreach": f"${{{name}.models}}", "do": {
            "cmd": f"cnnrnn train {name} --model ${{key}}", "deps": [f"data/{name}/prepared", *deps["train"]],
            "params": ["seed", "runtime", f"{name}.models.${{key}}", f"{name}.train"], "outs": [f"models/{name}/${{key}}"],
            "plots": _uncached([f"plots/{name}/${{key}}/train_curves.csv"])}}
    else:
        groups = [g for g in ("model", "loss", "train", "predict", "generate") if g in section]
        stages[f"{name}_train"] = {
            "cmd": f"cnnrnn train {name}", "deps": [f"data/{name}/prepared", *deps["train"]],
            "params": ["seed", "runtime", *(f"{name}.{g}" for g in groups)], "outs": [f"models/{name}"],
            "plots": _uncached([f"plots/{name}/train_curves.csv"])}
    evaluate_keys = [k for k in section["evaluate"] if k not in ("name", *REPORT_ONLY)]
    evaluate: dict[str, Any] = {
        "cmd": f"cnnrnn evaluate {name}", "deps": [f"data/{name}/prepared", f"models/{name}", *deps["evaluate"]],
        "params": ["runtime", *(_key(app, p) for p in app.evaluate_params),
                   *(f"{name}.evaluate.{k}" for k in evaluate_keys)]}
    texts = [f"plots/{name}/{f}" for f in app.evaluate_plots if not f.endswith(PLOT_SUFFIXES)]  # shown by the report
    if app.evaluate_outs or texts:
        evaluate["outs"] = [*app.evaluate_outs, *_uncached(texts)]
    evaluate["metrics"] = _uncached([f"metrics/{name}.json"])
    evaluate["plots"] = _uncached([f"plots/{name}/{f}" for f in app.evaluate_plots if f.endswith(PLOT_SUFFIXES)])
    stages[f"{name}_evaluate"] = evaluate
    return stages


def report_stage(params: dict[str, Any], root: Path) -> dict[str, Any]:
    apps = list(APPLICATIONS)
    return {"cmd": "cnnrnn report",
            "deps": ["metrics", *(f"plots/{a}" for a in apps),
                     *sorted([*import_closure(list(STAGE_ROOTS["report"]), root), "src/cnnrnn/registry.py"])],
            "params": [f"{a}.evaluate.{k}" for k in REPORT_ONLY for a in apps if k in params[a]["evaluate"]],
            "outs": [*_uncached(["reports/report.md"]), "reports/index.html"]}  # the page embeds the pictures: DVC keeps it


def learning_curves(app: Application, params: dict[str, Any]) -> dict[str, Any]:
    """The plot of ``app.curves`` over epochs, from each of the application's models' ``train_curves.csv``."""
    models = list(params[app.name].get("models") or {}) if app.several_models else []
    files = [f"plots/{app.name}/{m}/train_curves.csv" for m in models] or [f"plots/{app.name}/train_curves.csv"]
    return {f"{app.name} learning curves": {"template": "linear", "x": "epoch", "y": {f: list(app.curves) for f in files}}}


def _dump(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=False, default_flow_style=False, width=120)


def _indent(text: str, spaces: int = 2) -> str:
    return "".join(" " * spaces + line if line.strip() else line for line in text.splitlines(keepends=True))


def dvc_yaml_text(root: Path) -> str:
    """The text of ``dvc.yaml`` for the project at ``root`` (its ``src/``, and ``params.yaml`` for the keys)."""
    params = load_params(root)
    parts = [HEADER, "stages:\n"]
    for app in APPLICATIONS.values():
        models = " (one train stage per entry of <app>.models: <app>_train@<name>)" if app.several_models else ""
        parts.append(f"  # {app.name} ({app.network}): {app.summary}{models}\n")
        parts.append(_indent(_dump(app_stages(app, params, root))))
    parts.append("  # every application's metrics, tables and pictures, each against its quality bar\n")
    parts.append(_indent(_dump({"report": report_stage(params, root)})))
    parts.append("\n# How `dvc plots show` / `dvc plots diff` draw the plot data (pictures are shown as they are).\n")
    parts.append(_dump({"plots": [d for app in APPLICATIONS.values()
                                  for d in (learning_curves(app, params), *app.plot_definitions)]}))
    return "".join(parts)
