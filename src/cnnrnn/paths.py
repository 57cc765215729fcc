"""Where an application's files live, and which models it trains.

Used by the stages, training, evaluation and the applications' evaluate modules alike, so
it imports nothing of theirs: no module here depends on the stages that dispatch to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class AppPaths:
    """Where one application's files live, relative to the project root."""

    root: Path
    app: str

    @property
    def raw(self) -> Path:
        return self.root / "data" / self.app / "raw"

    @property
    def prepared(self) -> Path:
        return self.root / "data" / self.app / "prepared"

    @property
    def model_dir(self) -> Path:
        return self.root / "models" / self.app

    @property
    def written_under(self) -> Path:
        """The folder that ``metrics``, ``plots`` and :meth:`output` are in: the project root (see :class:`StagedPaths`)."""
        return self.root

    @property
    def metrics(self) -> Path:
        return self.written_under / "metrics" / f"{self.app}.json"

    @property
    def plots(self) -> Path:
        return self.written_under / "plots" / self.app

    def output(self, relative: str) -> Path:
        """Where a stage writes its output ``<root>/<relative>`` (a DVC ``outs`` entry such as ``data/compose/generated``)."""
        return self.written_under / relative


@dataclass(frozen=True)
class StagedPaths(AppPaths):
    """An application's paths while ``evaluate`` runs: what it writes (``metrics``, ``plots``, :meth:`output`) goes under
    ``staging`` (see :class:`cnnrnn.atomic.StagedOutputs`); what it reads (``prepared``, ``model_dir``) stays where it is."""

    staging: Path = Path(".")

    @property
    def written_under(self) -> Path:
        return self.staging


@dataclass(frozen=True)
class ModelPaths(AppPaths):
    """The folders of one of several models an application trains (``<app>.models.<model>``):
    ``models/<app>/<model>/`` and ``plots/<app>/<model>/``."""

    model: str = ""

    @property
    def model_dir(self) -> Path:
        return self.root / "models" / self.app / self.model

    @property
    def plots(self) -> Path:
        return self.written_under / "plots" / self.app / self.model


def model_names(params: dict[str, Any]) -> list[str]:
    """The models an application trains: the keys of ``<app>.models``, or none for a one-model application."""
    return list(params.get("models") or {})


def model_params(params: dict[str, Any], name: str) -> dict[str, Any]:
    """An application's params as one of its several models sees them: ``model`` = ``models.<name>``,
    ``train`` = the shared ``train`` settings with the model's own ``train`` settings on top."""
    model = params["models"][name]
    return {**params, "model": model, "train": {**params["train"], **(model.get("train") or {})}, "model_key": name}
