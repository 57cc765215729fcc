"""The same numbers on another machine: pin what decides the floating-point path, and record the machine.

A CPU computes a convolution, a matrix product or a sum in an order that depends on the kernels'
instruction set (wider vectors add in a different order) and on the thread count (each thread
sums its share). Different orders round differently, training amplifies the last bits, and the
metrics move (classify 0.988 against 0.991 on two CPUs of the same kind). So the stage commands
that compute (train, evaluate, bench, predict, generate) pin, from the ``runtime`` section of
``params.yaml`` and *before* torch is imported (the libraries read these once, when they start):

========================  ==========================================  ==============================
``runtime`` key           sets                                        decides
========================  ==========================================  ==============================
``threads``               ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``,   how sums are split over threads
                          ``torch.set_num_threads``
``cpu_capability``        ``ATEN_CPU_CAPABILITY``                     PyTorch's own vectorized kernels
``onednn_max_cpu_isa``    ``ONEDNN_MAX_CPU_ISA``                      oneDNN's (convolutions)
``mkl_cbwr``              ``MKL_CBWR``                                MKL's code path (matrix products)
========================  ==========================================  ==============================

The config wins over the environment, so ``dvc repro`` gives the same numbers whoever runs it; a
variable already set to something else is overridden with a note on stderr. A key set to ``null``
pins nothing: the environment (or the library's own choice for this CPU) decides, and the run's
:func:`fingerprint` says what it was. Child processes (Lightning's DDP workers, DataLoader workers)
inherit the environment.

:func:`fingerprint` describes the machine and the libraries of a run: it goes to MLflow tags
(``machine.*``) and ``train_summary.json`` (key ``machine``); ``metrics/<app>.json`` keeps its brief form
(CPU, instruction set in use, threads, torch and numpy versions), which ``cnnrnn verify`` ignores.
This module imports nothing heavy at the top: pinning has to happen before torch is loaded.
"""

from __future__ import annotations

import os
import platform
import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from cnnrnn.errors import UserError

# runtime key -> the environment variable it sets, and the values that variable accepts (upper case, for
# checking only; a value's own case is passed on). The lists are those of torch 2.13 (ATen), oneDNN 3.12, MKL 2024.2.
PINNED_VARIABLES: dict[str, str] = {
    "cpu_capability": "ATEN_CPU_CAPABILITY",
    "onednn_max_cpu_isa": "ONEDNN_MAX_CPU_ISA",
    "mkl_cbwr": "MKL_CBWR",
}
KNOWN_VALUES: dict[str, tuple[str, ...]] = {
    "cpu_capability": ("DEFAULT", "AVX2", "AVX512", "ZVECTOR", "VSX", "SVE256"),
    "onednn_max_cpu_isa": ("DEFAULT", "SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE",
                           "AVX512_CORE_VNNI", "AVX512_CORE_BF16", "AVX10_1_512", "AVX512_CORE_FP16",
                           "AVX10_1_512_AMX", "AVX10_1_512_AMX_FP16", "AVX10_2_512", "AVX10_2_512_AMX_2"),
    "mkl_cbwr": ("AUTO", "COMPATIBLE", "SSE2", "SSE3", "SSSE3", "SSE4_1", "SSE4_2", "AVX", "AVX2", "AVX512_MIC",
                 "AVX512", "AVX512_MIC_E1", "AVX512_E1", "AVX512_E2", "AVX512_E3", "AVX512_E4", "AVX512_E5"),
}
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
FINGERPRINT_KEY = "machine"  # the key of metrics/<app>.json and train_summary.json that holds the fingerprint
# CPU features worth naming in a fingerprint: the vector extensions the kernels above choose between.
# The fingerprint's entries metrics/<app>.json keeps (each is a column of `dvc metrics show`); MLflow's tags and
# train_summary.json keep them all.
BRIEF_KEYS = ("cpu_model", "cpu_capability", "threads", "torch", "numpy")
CPU_FEATURES = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "amx_tile")


def check_runtime(runtime: dict[str, Any], where: str = "runtime") -> None:
    """Raise :class:`UserError` if a value of the ``runtime`` section cannot be pinned."""
    threads = runtime.get("threads")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise UserError(f"{where}.threads = {threads!r}: expected a whole number >= 1 (or null: the machine decides)")
    for key in PINNED_VARIABLES:
        value = runtime.get(key)
        if value is None:
            continue
        base = str(value).upper().removesuffix(",STRICT")  # MKL_CBWR=AVX2,STRICT is allowed
        if not isinstance(value, str) or base not in KNOWN_VALUES[key]:
            raise UserError(f"{where}.{key} = {value!r}: expected one of {', '.join(KNOWN_VALUES[key])} "
                            f"(or null: the machine decides); see conf/config.yaml")


def wanted_environment(runtime: dict[str, Any]) -> dict[str, str]:
    """The environment variables ``runtime`` pins, with their values (nothing for a ``null`` key)."""
    wanted = {variable: str(runtime[key]) for key, variable in PINNED_VARIABLES.items() if runtime.get(key) is not None}
    if runtime.get("threads") is not None:
        wanted.update({variable: str(runtime["threads"]) for variable in THREAD_VARIABLES})
    return wanted


def pin_numerics(runtime: dict[str, Any] | None, environ: dict[str, str] | None = None) -> dict[str, str]:
    """Set the environment ``runtime`` asks for, then import torch and set its thread count.

    Call it before anything imports torch (the CLI does, first thing, for the commands that compute):
    OpenMP reads its thread count, and ATen, oneDNN and MKL their instruction set, once. Returns the
    variables it set. ``runtime`` ``None`` (no ``params.yaml``, e.g. ``cnnrnn predict`` outside a
    project) pins nothing.
    """
    if runtime is None:
        return {}
    check_runtime(runtime)
    environ = os.environ if environ is None else environ
    already_loaded = "torch" in sys.modules
    wanted = wanted_environment(runtime)
    for variable, value in wanted.items():
        given = environ.get(variable)
        if given is not None and given != value:
            key = next((k for k, v in PINNED_VARIABLES.items() if v == variable), "threads")
            print(f"cnnrnn: note: {variable}={given} in the environment is overridden by runtime.{key}={value} "
                  f"(params.yaml), so that runs reproduce; set runtime.{key}=null to let the environment decide",
                  file=sys.stderr)
        environ[variable] = value
    if runtime.get("threads") is not None or runtime.get("cpu_capability") is not None:
        import torch

        if runtime.get("threads") is not None:
            torch.set_num_threads(runtime["threads"])
        asked = runtime.get("cpu_capability")
        used = torch.backends.cpu.get_cpu_capability()
        if asked is not None and used.upper() != str(asked).upper():
            reason = ("torch was imported before the pins were set" if already_loaded
                      else "this CPU lacks it")
            print(f"cnnrnn: warning: runtime.cpu_capability={asked} but PyTorch uses {used} ({reason}); "
                  f"results will differ from runs with {asked}", file=sys.stderr)
    return wanted


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's name as the kernel reports it (``model name``), else what :mod:`platform` knows."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def cpu_features(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """Which of :data:`CPU_FEATURES` the CPU has (the ``flags`` line of ``/proc/cpuinfo``), space-separated."""
    try:
        flags = next((line.split(":", 1)[1].split() for line in cpuinfo.read_text().splitlines()
                      if line.startswith("flags")), [])
    except OSError:
        return "unknown"
    return " ".join(f for f in CPU_FEATURES if f in flags)


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def fingerprint(brief: bool = False) -> dict[str, str]:
    """The machine and libraries a run computed with, as strings (MLflow tags take strings).

    ``cpu_capability`` and ``threads`` are what PyTorch uses, after pinning; the ``env.*`` entries
    are the pinning variables as the process saw them ("unset" where nothing set them).
    ``brief``: only :data:`BRIEF_KEYS` (CPU, instruction set in use, threads, torch and numpy versions).
    """
    import torch

    config = torch.__config__.show()
    mkl = re.search(r"Math Kernel Library Version (\d[\d.]*)", config)
    onednn = re.search(r"MKL-DNN v(\S+)", config)
    env = {f"env.{v}": os.environ.get(v, "unset") for v in (*PINNED_VARIABLES.values(), *THREAD_VARIABLES)}
    machine = {
        "cpu_model": cpu_model(),
        "cpu_features": cpu_features(),
        "cpu_count": str(os.cpu_count()),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": str(torch.get_num_threads()),
        **env,
        "torch": torch.__version__,
        "mkl": mkl.group(1) if mkl else "none",
        "onednn": onednn.group(1) if onednn else "none",
        "numpy": _version("numpy"),
        "pytorch_lightning": _version("pytorch-lightning"),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    return {key: machine[key] for key in BRIEF_KEYS} if brief else machine


def describe(machine: dict[str, Any]) -> str:
    """One line for a person: 'AMD EPYC, AVX2 kernels, 2 threads, torch 2.13.0+cpu'."""
    if not machine:
        return "no fingerprint recorded"
    return (f"{machine.get('cpu_model', '?')}, {machine.get('cpu_capability', '?')} kernels, "
            f"{machine.get('threads', '?')} threads, torch {machine.get('torch', '?')}")
