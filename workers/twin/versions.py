"""Which model produced a twin: the model version id, and a snapshot's progressive-validation metrics.

The id is ``<family>/<layout>:<hash>``: the model family, the state layout (see
:mod:`workers.twin.upgrade`) and the first 12 hex digits of a SHA-256 over the model's
parameters: every upper-case numeric, string or tuple/dict constant of the modules that
define the twin's models and rules, and the plain defaults of their dataclass fields (e.g.
``ScoreForecaster.prior_weight``). Changing a threshold, a learning rate or a window changes
the id; refactoring code without changing a number does not. Computed once per process from
the code, so every twin written by one build carries the same id.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from types import ModuleType
from typing import Any

from workers.twin import (
    conformal,
    deterioration,
    events,
    forecast,
    monitors,
    outputs,
    policy,
    shifts,
    state,
    twin,
)
from workers.twin.twin import LAYOUT, TwinState

MODEL_FAMILY = "novamind-twin"
PARAMETER_MODULES: tuple[ModuleType, ...] = (
    conformal,
    deterioration,
    events,
    forecast,
    monitors,
    outputs,
    policy,
    shifts,
    state,
    twin,
)


def _plain(value: Any) -> Any:
    """``value`` as JSON-able plain data, or ``None`` when it is not a parameter."""
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple | list) and all(_plain(v) is not None for v in value):
        return [_plain(v) for v in value]
    if isinstance(value, dict) and all(
        isinstance(k, str) and _plain(v) is not None for k, v in value.items()
    ):
        return {k: _plain(v) for k, v in sorted(value.items())}
    return None


def parameters() -> dict[str, Any]:
    """The parameters the id is computed from, keyed ``module.NAME`` / ``module.Class.field``."""
    out: dict[str, Any] = {}
    for module in PARAMETER_MODULES:
        short = module.__name__.rsplit(".", 1)[-1]
        for name, value in vars(module).items():
            if name.isupper() and (plain := _plain(value)) is not None:
                out[f"{short}.{name}"] = plain
            if (
                isinstance(value, type)
                and dataclasses.is_dataclass(value)
                and value.__module__ == module.__name__
            ):
                for f in dataclasses.fields(value):
                    if f.default is not dataclasses.MISSING and (plain := _plain(f.default)) is not None:
                        out[f"{short}.{name}.{f.name}"] = plain
    return dict(sorted(out.items()))


def _compute() -> str:
    digest = hashlib.sha256(json.dumps(parameters(), sort_keys=True).encode()).hexdigest()
    return f"{MODEL_FAMILY}/{LAYOUT}:{digest[:12]}"


MODEL_VERSION_ID = _compute()
"""The model version id of this build."""


def metrics(s: TwinState) -> dict[str, float | int | None]:
    """Progressive-validation metrics of a twin (each forecast scored before learning from its
    target): next-day severity MAE beside persistence, the 80% interval's coverage, and the
    next PHQ-9 forecast's MAE beside persistence."""
    sev, phq9 = s.severity, s.phq9_model
    return {
        "forecast_mae": sev.published.mae,
        "persistence_mae": sev.persistence.mae,
        "forecasts_scored": sev.published.n,
        "interval_coverage": sev.conformal.coverage,
        "phq9_forecast_mae": phq9.model.mae,
        "phq9_persistence_mae": phq9.persistence.mae,
        "phq9_forecasts_scored": phq9.model.n,
    }
