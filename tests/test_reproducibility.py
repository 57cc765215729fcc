"""The same numbers on another machine: pinning the floating-point path, the machine fingerprint, `cnnrnn verify`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cnnrnn.cli import main
from cnnrnn.config import runtime_params, write_params
from cnnrnn.errors import UserError
from cnnrnn.reproducibility import (
    BRIEF_KEYS,
    FINGERPRINT_KEY,
    PINNED_VARIABLES,
    THREAD_VARIABLES,
    check_runtime,
    cpu_features,
    cpu_model,
    fingerprint,
    pin_numerics,
)
from cnnrnn.verification import compare, flatten, is_ignored, is_timing

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = yaml.safe_load((ROOT / "conf" / "config.yaml").read_text())["runtime"]
PIN_VARIABLES = (*PINNED_VARIABLES.values(), *THREAD_VARIABLES)


def python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (torch not yet imported) with exactly the pinning variables in ``env``."""
    base = {k: v for k, v in os.environ.items() if k not in PIN_VARIABLES}
    return subprocess.run([sys.executable, "-c", code], env={**base, **env}, capture_output=True, text=True, timeout=120, check=False)


PIN_AND_REPORT = """
import json, sys
from cnnrnn.reproducibility import pin_numerics
assert "torch" not in sys.modules
pin_numerics(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {runtime!r})
import os, torch
print(json.dumps({{"capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
                  "env": {{v: os.environ.get(v) for v in {variables!r}}}}}))
"""


def test_config_wins_over_the_environment_and_is_set_before_torch_loads():
    runtime = {"threads": 1, "cpu_capability": "default", "onednn_max_cpu_isa": "AVX2", "mkl_cbwr": "AVX2"}
    done = python(PIN_AND_REPORT.format(runtime=runtime, variables=PIN_VARIABLES),
                  {"ATEN_CPU_CAPABILITY": "avx2", "OMP_NUM_THREADS": "2", "MKL_CBWR": "AUTO"})
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["capability"] == "DEFAULT" and seen["threads"] == 1  # torch read the pinned values when it loaded
    assert seen["env"] == {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2",
                           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    # the user's differing values are named, with how to keep them
    assert "ATEN_CPU_CAPABILITY=avx2" in done.stderr and "runtime.cpu_capability=null" in done.stderr
    assert "OMP_NUM_THREADS=2" in done.stderr and "MKL_CBWR=AUTO" in done.stderr


def test_null_pins_nothing_and_leaves_the_environment_alone():
    environ = {"OMP_NUM_THREADS": "3"}
    assert pin_numerics({key: None for key in RUNTIME}, environ) == {}
    assert environ == {"OMP_NUM_THREADS": "3"}
    assert pin_numerics(None, environ) == {}


@pytest.mark.parametrize("key,value", [("threads", 0), ("threads", "2"), ("cpu_capability", "avx3"),
                                       ("onednn_max_cpu_isa", "AVX9"), ("mkl_cbwr", 2)])
def test_a_value_that_cannot_be_pinned_names_the_key(key, value):
    with pytest.raises(UserError, match=f"runtime.{key}"):
        check_runtime({**RUNTIME, key: value})


def test_mkl_strict_mode_is_accepted():
    check_runtime({**RUNTIME, "mkl_cbwr": "AVX2,STRICT"})


def test_runtime_section_is_checked_against_conf(project_copy):
    params = yaml.safe_load((project_copy / "params.yaml").read_text())
    assert runtime_params(project_copy) == RUNTIME
    write_params({**params, "runtime": {**RUNTIME, "thread": 2}}, project_copy)
    with pytest.raises(UserError, match=r"runtime\.thread.*conf/config\.yaml"):
        runtime_params(project_copy)
    write_params({k: v for k, v in params.items() if k != "runtime"}, project_copy)
    with pytest.raises(UserError, match="cnnrnn params"):
        runtime_params(project_copy)
    assert runtime_params(project_copy / "conf") is None  # no params.yaml there: nothing to pin


def test_fingerprint_names_the_machine_and_the_libraries():
    import numpy
    import torch

    machine = fingerprint()
    assert all(isinstance(v, str) and v for v in machine.values())
    assert machine["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert machine["threads"] == str(torch.get_num_threads())
    assert machine["torch"] == torch.__version__ and machine["numpy"] == numpy.__version__
    assert machine["python"] == ".".join(map(str, sys.version_info[:3]))
    for key in ("cpu_model", "cpu_features", "pytorch_lightning", "platform", "mkl", "onednn"):
        assert key in machine
    assert {f"env.{v}" for v in PIN_VARIABLES} <= set(machine)
    # metrics/<app>.json keeps the five: CPU, instruction set in use, threads, torch and numpy
    assert fingerprint(brief=True) == {key: machine[key] for key in BRIEF_KEYS}
    assert set(BRIEF_KEYS) == {"cpu_model", "cpu_capability", "threads", "torch", "numpy"}


def test_cpu_model_and_features_come_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Example CPU 9000\nflags\t\t: fpu sse2 avx avx2 fma avx512f\n")
    assert cpu_model(cpuinfo) == "Example CPU 9000"
    assert cpu_features(cpuinfo) == "avx avx2 fma avx512f"
    assert cpu_model(tmp_path / "missing")  # falls back to what platform knows


# --- cnnrnn verify, in a real git repository ------------------------------------------------------------------

COMMITTED = {"test_accuracy": 0.988, "test_loss": 0.0558, "n_test": 1000, "train_seconds": 60.1,
             "train_samples_per_second": 910.2, "evaluate_seconds": 2.0,
             FINGERPRINT_KEY: {"cpu_model": "AMD EPYC", "cpu_capability": "AVX2", "threads": "2", "torch": "2.13.0"}}


def git(project: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=project, check=True, capture_output=True)


@pytest.fixture
def committed_project(tmp_path, monkeypatch) -> Path:
    """A git repository with dvc.yaml and a committed metrics/classify.json, as the working directory."""
    project = tmp_path / "project"
    (project / "metrics").mkdir(parents=True)
    (project / "dvc.yaml").write_text("stages: {}\n")
    (project / "metrics" / "classify.json").write_text(json.dumps(COMMITTED, indent=2))
    git(project, "init", "-q")
    git(project, "add", ".")
    git(project, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-m", "metrics")
    monkeypatch.chdir(project)
    return project


def reproduce(project: Path, **changes) -> None:
    (project / "metrics" / "classify.json").write_text(json.dumps({**COMMITTED, **changes}, indent=2))


def test_verify_passes_on_equal_metrics_and_ignores_timings_and_the_machine(committed_project, capsys):
    reproduce(committed_project, train_seconds=45.3, train_samples_per_second=1271.7, evaluate_seconds=1.6,
              machine={**COMMITTED[FINGERPRINT_KEY], "cpu_model": "Intel Xeon", "threads": "2"})
    assert main(["verify", "classify"]) == 0
    out = capsys.readouterr().out
    assert "classify: reproduced" in out and "3 keys equal" in out
    ignored = out.split("ignored (timings and the machine fingerprint): ")[1].splitlines()[0]
    for key in ("train_seconds", "train_samples_per_second", "evaluate_seconds", "machine.cpu_model"):
        assert key in ignored
    assert "committed on: AMD EPYC" in out and "reproduced on: Intel Xeon" in out


def test_verify_fails_naming_each_differing_key(committed_project, capsys):
    reproduce(committed_project, test_accuracy=0.985, new_metric=1.0)
    assert main(["verify"]) == 1  # all applications; only classify has metrics here
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.strip().startswith("test_accuracy"))
    assert row.split() == ["test_accuracy", "0.988", "0.985", "-0.003"]
    assert any(line.split()[:3] == ["new_metric", "(missing)", "1.0"] for line in out.splitlines() if line.strip())
    assert "test_loss" not in out.split("DIFFERS")[1].split("ignored")[0]  # equal keys are not listed


def test_verify_tolerance_and_revision(committed_project, capsys):
    reproduce(committed_project, test_accuracy=0.985)
    assert main(["verify", "classify", "--tolerance", "0.005"]) == 0
    assert main(["verify", "classify", "--against", "no-such-rev"]) == 1
    assert "no-such-rev" in capsys.readouterr().err


def test_verify_fails_when_metrics_were_not_reproduced(committed_project, capsys):
    (committed_project / "metrics" / "classify.json").unlink()
    assert main(["verify", "classify"]) == 1
    assert "dvc repro classify_evaluate" in capsys.readouterr().out


def test_ignored_keys():
    assert is_ignored("word_train_seconds") and is_ignored("train_samples_per_second") and is_ignored("machine.torch")
    assert not is_ignored("test_accuracy") and not is_ignored("machines_seen")
    comparison = compare("x", {"a": float("nan"), "b": True}, {"a": float("nan"), "b": 1})
    assert comparison.equal == ["a"] and comparison.differing == [("b", True, 1)]


def test_every_applications_timings_are_recognised_wherever_the_unit_stands():
    """Every key of every committed metrics file: the timings (whose words name a unit of time, at the start as in
    stylize's ``seconds_per_image_512`` or at the end) are ignored, and no quality figure is."""
    from cnnrnn.registry import APPLICATIONS

    assert is_timing("seconds_per_image_512") and is_timing("optimize_seconds_per_image_512")
    assert is_timing("latency_ms") and not is_timing("msd_accuracy") and not is_timing("secondary_accuracy")
    timings = {}
    for app in APPLICATIONS:
        keys = flatten(json.loads((ROOT / "metrics" / f"{app}.json").read_text()))
        timings[app] = sorted(k for k in keys if is_ignored(k) and not k.startswith(f"{FINGERPRINT_KEY}."))
        for key in keys:
            if not is_ignored(key):
                assert "second" not in key and "time" not in key, f"{app}: {key} looks like a timing but is compared"
    assert {"seconds_per_image_512", "optimize_seconds_per_image_512", "train_seconds"} <= set(timings["stylize"])
    assert all("train_seconds" in keys and "evaluate_seconds" in keys for keys in timings.values()), timings
    assert all(any(unit in key for unit in ("second", "ms")) for keys in timings.values() for key in keys), timings


def test_verify_and_the_data_stages_do_not_load_torch(committed_project):
    code = ("import sys; from cnnrnn.cli import main; rc = main(['verify', 'classify']); "
            "print(rc, sorted(m for m in ('torch', 'pytorch_lightning', 'mlflow') if m in sys.modules))")
    done = python(code, {})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "0 []"


# --- a tiny training: the same weights whatever the environment says, once pinned -------------------------------

TINY_TRAINING = """
import hashlib, json, sys
from cnnrnn.reproducibility import pin_numerics
pin_numerics(json.loads(sys.argv[1]))
import torch, yaml
from cnnrnn.classify.network import build_classifier
torch.manual_seed(0)
model_cfg = {{**yaml.safe_load(open({model_cfg!r})), "channels": [8, 16], "hidden": 32}}  # small: fast
network = build_classifier(model_cfg, 1, 10, 28)
optimizer = torch.optim.AdamW(network.parameters(), lr=3e-3)
images, labels = torch.rand(32, 1, 28, 28), torch.randint(0, 10, (32,))
for step in range(3):
    loss = torch.nn.functional.cross_entropy(network(images), labels)
    optimizer.zero_grad(); loss.backward(); optimizer.step()
digest = hashlib.sha256()
for value in network.state_dict().values():
    digest.update(value.contiguous().numpy().tobytes())
print(digest.hexdigest(), torch.backends.cpu.get_cpu_capability(), torch.get_num_threads())
"""


@pytest.mark.skipif("avx2" not in cpu_features().split(), reason="the pinned kernels need an AVX2 CPU")
def test_pinned_training_gives_the_same_weights_whatever_the_environment():
    """Another machine's defaults, imitated by the environment (scalar kernels, 2 threads, oneDNN and MKL at their
    widest): with the project's pins the weights are the same bits (measured unpinned, each of these variables
    changes them: benchmarks/reproducibility.md). One thread here, the test's only departure from conf/, keeps it
    fast on a busy machine."""
    runtime = {**RUNTIME, "threads": 1}
    code = TINY_TRAINING.format(model_cfg=str(ROOT / "conf" / "classify" / "model" / "cnn.yaml"))
    other_machine = {"ATEN_CPU_CAPABILITY": "default", "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2",
                     "ONEDNN_MAX_CPU_ISA": "DEFAULT", "MKL_CBWR": "AUTO"}
    base = {k: v for k, v in os.environ.items() if k not in PIN_VARIABLES}
    unpinned = {key: None for key in RUNTIME}
    runs = [subprocess.Popen([sys.executable, "-c", code, json.dumps(pins)], env={**base, **env}, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for pins, env in ((runtime, {}), (runtime, other_machine), (unpinned, other_machine))]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert all(run.returncode == 0 for run in runs), outputs
    (here, capability, threads), (there, *_), (unpinned_there, *_) = (out.split() for out, _ in outputs)
    assert capability == "AVX2" and threads == "1"
    assert here == there
    assert unpinned_there != here  # the environment does reach the kernels when nothing pins them
