"""The application protocol: every registered application provides it, and dvc.yaml cannot drift from the code."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cnnrnn.pipeline import (NOT_DEPENDENCIES, STAGE_PART, dvc_yaml_text, import_closure, module_file,
                             stage_roots)
from cnnrnn.registry import APPLICATIONS, GENERATE_FUNCTION, PROTOCOL, application

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
GROUPS = ("data", "train", "evaluate")
SHAPE = ("data", "datamodule", "network", "model", "evaluate", "predict")  # every application's modules  # every application's conf/<app>/ groups, besides its model(s)


@pytest.mark.parametrize("name", list(APPLICATIONS))
def test_every_registered_application_provides_the_protocol(name):
    app = application(name)
    assert (SRC / "cnnrnn" / name / "__init__.py").is_file(), f"src/cnnrnn/{name}/ is the application's package"
    for module in SHAPE:  # one shape: who has read one application finds their way in all the others
        assert (SRC / "cnnrnn" / name / f"{module}.py").is_file(), f"src/cnnrnn/{name}/{module}.py is missing"
    for part, (required, _optional) in PROTOCOL.items():
        module = app.part(part)
        for function in required:
            assert callable(getattr(module, function, None)), f"{app.module_name(part)} lacks {function}()"
    if app.generates:
        assert callable(getattr(app.part(GENERATE_FUNCTION), GENERATE_FUNCTION, None))
    for group in (*GROUPS, "model"):
        assert (ROOT / "conf" / name / group).is_dir(), f"conf/{name}/{group}/ is missing"
    defaults = yaml.safe_load((ROOT / "conf" / "config.yaml").read_text())["defaults"]
    chosen = {key.split("@")[0] for d in defaults if isinstance(d, dict) for key in d}
    assert {f"{name}/{g}" for g in (*GROUPS, "model")} <= chosen, "conf/config.yaml must choose every group"
    assert app.tiny, "the tests' tiny settings"
    params = yaml.safe_load((ROOT / "params.yaml").read_text())[name]
    assert ("models" in params) == app.several_models
    assert params["evaluate"].get("quality_bars"), "each application names the bars of its issue"


def test_the_readme_lists_the_places_a_new_application_touches():
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Adding an application"):]
    section = section[:section.index("\n## ", 1)] if "\n## " in section[1:] else section
    for place in ("src/cnnrnn/<app>/", "conf/<app>/", "conf/config.yaml", "registry.py", "cnnrnn pipeline",
                  "cnnrnn params", *PROTOCOL):
        assert place in section, f"'Adding an application' does not mention {place}"
    for functions in PROTOCOL.values():
        for function in functions[0]:
            assert function in section, f"'Adding an application' does not name {function}()"


def test_committed_dvc_yaml_is_what_the_registry_gives():
    assert (ROOT / "dvc.yaml").read_text() == dvc_yaml_text(ROOT), "dvc.yaml is stale: run `cnnrnn pipeline` and commit it"
    done = subprocess.run([sys.executable, "-m", "cnnrnn.cli", "pipeline", "--check"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def _stage(stages: dict, name: str) -> dict:
    stage = stages[name]
    return stage["do"] if "foreach" in stage else stage


@pytest.mark.parametrize("name", list(APPLICATIONS))
def test_every_file_a_stage_imports_is_one_of_its_deps(name):
    """The import closure of the modules a stage runs, computed from the source, is in the committed deps."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    app = application(name)
    for stage in STAGE_PART:
        deps = set(_stage(stages, f"{name}_{stage}").get("deps", []))
        needed = import_closure(stage_roots(app, stage, ROOT), ROOT)
        missing = sorted(set(needed) - deps)
        assert not missing, f"{name}_{stage} imports {missing} but does not list them in deps: run `cnnrnn pipeline`"
    report = set(stages["report"]["deps"])
    assert {"metrics", f"plots/{name}"} <= report and set(import_closure(["cnnrnn.reporting"], ROOT)) <= report


def test_the_closure_finds_what_the_hand_written_dvc_yaml_missed():
    """The drift found in review: digit_scenes imports classify's loader, coco imports fetching, and so on."""
    detect_prepare = import_closure(stage_roots(application("detect"), "prepare", ROOT), ROOT)
    assert {"src/cnnrnn/mnist5k.py", "src/cnnrnn/fetching.py", "src/cnnrnn/digit_scenes.py"} <= set(detect_prepare)
    localize_evaluate = import_closure(stage_roots(application("localize"), "evaluate", ROOT), ROOT)
    assert "src/cnnrnn/convnet.py" in localize_evaluate
    localize_train = import_closure(stage_roots(application("localize"), "train", ROOT), ROOT)
    assert "src/cnnrnn/normalization.py" in localize_train


def test_import_closure_follows_relative_and_function_level_imports(tmp_path):
    pkg = tmp_path / "src" / "cnnrnn"
    (pkg / "app").mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""docstring only"""\n')
    (pkg / "app" / "__init__.py").write_text("X = 1\n")  # code: a dependency
    (pkg / "app" / "model.py").write_text("from .helper import f\n\ndef g():\n    from cnnrnn import shared\n")
    (pkg / "app" / "helper.py").write_text("import cnnrnn.deep.leaf\n")
    (pkg / "shared.py").write_text("from cnnrnn.errors import UserError\n")
    (pkg / "deep").mkdir()
    (pkg / "deep" / "__init__.py").write_text('"""only a docstring: not a dependency"""\n')
    (pkg / "deep" / "leaf.py").write_text("")
    (pkg / "errors.py").write_text("")
    (pkg / "unused.py").write_text("")
    assert import_closure(["cnnrnn.app.model"], tmp_path) == [
        "src/cnnrnn/app/__init__.py", "src/cnnrnn/app/helper.py", "src/cnnrnn/app/model.py",
        "src/cnnrnn/deep/leaf.py", "src/cnnrnn/shared.py"]  # errors.py is in NOT_DEPENDENCIES


def test_files_left_out_of_deps_exist_and_give_a_reason():
    for path, reason in NOT_DEPENDENCIES.items():
        assert (ROOT / path).is_file() and len(reason) > 20, path


def test_dynamic_imports_only_where_the_stage_roots_stand_for_them():
    """`importlib.import_module` hides an import from the closure: only the registry, whose parts are the stages'
    roots, may use it."""
    allowed = {"src/cnnrnn/registry.py"}
    for path in sorted((SRC / "cnnrnn").rglob("*.py")):
        calls = [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Call)
                 and isinstance(n.func, ast.Attribute) and n.func.attr == "import_module"]
        rel = path.relative_to(ROOT).as_posix()
        assert not calls or rel in allowed, f"{rel} imports a module dynamically; go through cnnrnn.registry"


def _top_level_imports(path: Path, module: str) -> set[str]:
    """cnnrnn modules imported when ``module`` is imported (module level only: imports inside functions run later)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cnnrnn") and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("cnnrnn"))
    return {m for m in found if module_file(m, SRC) is not None and m != module}


def test_no_import_cycles_and_no_application_imports_another():
    modules = {".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__"): p
               for p in (SRC / "cnnrnn").rglob("*.py")}
    graph = {m: _top_level_imports(p, m) for m, p in modules.items()}

    def visit(module: str, path: list[str], done: set[str]) -> None:
        if module in path:
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(module):] + [module]))
        if module in done:
            return
        for imported in graph.get(module, ()):
            visit(imported, path + [module], done)
        done.add(module)

    done: set[str] = set()
    for module in sorted(graph):
        visit(module, [], done)
    for module, path in modules.items():
        parts = module.split(".")
        if len(parts) > 2 and parts[1] in APPLICATIONS:
            every = {n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, (ast.Import, ast.ImportFrom))}
            names = {getattr(n, "module", None) or "" for n in every} | {a.name for n in every for a in n.names}
            others = {n for n in names for other in APPLICATIONS if other != parts[1]
                      and (n == f"cnnrnn.{other}" or n.startswith(f"cnnrnn.{other}."))}
            assert not others, f"{module} uses the application(s) {sorted(others)} as a library; move what it needs " \
                               f"into a shared module named for what it is"
