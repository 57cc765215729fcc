"""``cnnrnn verify``: does a rerun reproduce the committed metrics?

After ``dvc repro`` (``make repro``) on a fresh clone, each ``metrics/<app>.json`` in the working
tree is compared, key by key, with the one committed at a git revision (``git show REV:metrics/<app>.json``).
Exact equality is the goal (the README states the tolerance); every key that differs is named with
both values. Timings (a key any of whose words is a unit of time: ``train_seconds``,
``seconds_per_image_512``, ``train_samples_per_second``) and the machine fingerprint (``machine.*``, see
:mod:`cnnrnn.reproducibility`) describe the machine, not the result: they are listed as ignored. Plain text in, plain text out: no torch, no Lightning, no MLflow.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnrnn.errors import UserError
from cnnrnn.reproducibility import FINGERPRINT_KEY, describe

# A key is a timing when one of its words (split at "_" and ".") is a unit of time, wherever the word stands:
# "train_seconds", "seconds_per_image_512", "train_samples_per_second", "latency_ms".
TIME_UNITS = frozenset({"second", "seconds", "ms", "milliseconds", "minute", "minutes", "hour", "hours"})


def is_timing(key: str) -> bool:
    """Whether ``key`` measures time (and so the machine): one of its words is a unit of time."""
    return not TIME_UNITS.isdisjoint(re.split(r"[_.]", key.lower()))


def flatten(metrics: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}, "c": [2, 3]}`` -> ``{"a.b": 1, "c.0": 2, "c.1": 3}``."""
    flat: dict[str, Any] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        elif isinstance(value, list):
            flat.update(flatten({str(i): v for i, v in enumerate(value)}, name + "."))
        else:
            flat[name] = value
    return flat


def is_ignored(key: str) -> bool:
    """Timings and the machine fingerprint: they describe the machine, not what was learned."""
    return is_timing(key) or key == FINGERPRINT_KEY or key.startswith(f"{FINGERPRINT_KEY}.")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def same(committed: Any, reproduced: Any, tolerance: float) -> bool:
    """Numbers within ``tolerance`` (absolute; NaN equals NaN); anything else exactly equal."""
    if _is_number(committed) and _is_number(reproduced):
        if math.isnan(committed) or math.isnan(reproduced):
            return math.isnan(committed) and math.isnan(reproduced)
        return abs(reproduced - committed) <= tolerance
    return type(committed) is type(reproduced) and committed == reproduced  # True is not 1, "0.9" is not 0.9


@dataclass
class Comparison:
    """One application's committed metrics against the reproduced ones."""

    app: str
    equal: list[str] = field(default_factory=list)
    # (key, committed value, reproduced value); None where the key is missing on that side
    differing: list[tuple[str, Any, Any]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    machines: tuple[dict, dict] = ({}, {})

    @property
    def ok(self) -> bool:
        return not self.differing


def compare(app: str, committed: dict[str, Any], reproduced: dict[str, Any], tolerance: float = 0.0) -> Comparison:
    """Key-by-key comparison of two ``metrics/<app>.json`` contents (nested dicts flattened to ``a.b``)."""
    result = Comparison(app, machines=(committed.get(FINGERPRINT_KEY) or {}, reproduced.get(FINGERPRINT_KEY) or {}))
    old, new = flatten(committed), flatten(reproduced)
    for key in list(dict.fromkeys([*old, *new])):
        if is_ignored(key):
            result.ignored.append(key)
        elif key in old and key in new and same(old[key], new[key], tolerance):
            result.equal.append(key)
        else:
            result.differing.append((key, old.get(key), new.get(key)))
    return result


def committed_metrics(root: Path, rev: str, app: str) -> dict[str, Any] | None:
    """``metrics/<app>.json`` as committed at ``rev``, or ``None`` if it is not there."""
    done = subprocess.run(["git", "show", f"{rev}:metrics/{app}.json"], cwd=root, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        if "not a git repository" in done.stderr:
            raise UserError(f"{root} is not a git repository: `cnnrnn verify` compares with committed metrics; "
                            f"run it in a clone of the project")
        check = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], cwd=root,
                               capture_output=True, text=True, check=False)
        if check.returncode != 0:
            raise UserError(f"--against {rev!r} is not a commit of {root} (try HEAD, a tag or a commit hash)")
        return None
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError as err:
        raise UserError(f"metrics/{app}.json at {rev} is not valid JSON ({err})") from err


def _format(value: Any) -> str:
    return "(missing)" if value is None else json.dumps(value) if isinstance(value, str) else str(value)


def _difference(old: Any, new: Any) -> str:
    if _is_number(old) and _is_number(new):
        return f"{new - old:+.6g}"
    return "(not a number)" if old is not None and new is not None else ""


def describe_comparison(comparison: Comparison, rev: str, tolerance: float) -> list[str]:
    c = comparison
    verdict = "reproduced" if c.ok else f"DIFFERS in {len(c.differing)} of {len(c.equal) + len(c.differing)} keys"
    heading = f"{c.app}: {verdict} (metrics/{c.app}.json against {rev}, tolerance {tolerance:g}; {len(c.equal)} keys equal)"
    lines = [heading]
    if c.differing:
        rows = [("key", "committed", "reproduced", "difference")]
        rows += [(key, _format(old), _format(new), _difference(old, new)) for key, old, new in c.differing]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    if c.ignored:
        lines.append(f"  ignored (timings and the machine fingerprint): {', '.join(c.ignored)}")
    committed_on, reproduced_on = c.machines
    if committed_on or reproduced_on:
        lines.append(f"  committed on: {describe(committed_on)}")
        lines.append(f"  reproduced on: {describe(reproduced_on)}")
    return lines


def verify(root: Path, apps: list[str], rev: str = "HEAD", tolerance: float = 0.0) -> tuple[str, bool]:
    """Compare ``metrics/<app>.json`` of the working tree with ``rev``'s for each of ``apps``.

    Returns the report (text) and whether every application reproduced within ``tolerance``.
    An application with metrics on one side only is a failure, named as such.
    """
    if tolerance < 0:
        raise UserError(f"--tolerance {tolerance}: expected 0 (exact) or a positive number")
    lines, ok = [], True
    for app in apps:
        path = root / "metrics" / f"{app}.json"
        committed = committed_metrics(root, rev, app)
        if not path.is_file():
            if committed is not None:
                lines.append(f"{app}: not reproduced: {path.relative_to(root)} is missing; run `dvc repro {app}_evaluate`")
                ok = False
            continue
        if committed is None:
            lines.append(f"{app}: nothing to compare: metrics/{app}.json is not committed at {rev}")
            ok = False
            continue
        try:
            reproduced = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise UserError(f"{path} is not valid JSON ({err}); rerun `dvc repro {app}_evaluate`") from err
        comparison = compare(app, committed, reproduced, tolerance)
        ok &= comparison.ok
        lines += describe_comparison(comparison, rev, tolerance)
    if not lines:
        raise UserError(f"no metrics to compare: neither the working tree nor {rev} has metrics/<app>.json for "
                        f"{', '.join(apps)}")
    return "\n".join(lines), ok
