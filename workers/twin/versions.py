"""Which model produced a twin: model versions, their ids, and progressive-validation metrics.

The id is ``<family>/<layout>:<hash>``: the model family, the state layout (see
:mod:`workers.twin.upgrade`) and the first 12 hex digits of a SHA-256 over the model's
parameters: every upper-case numeric, string or tuple/dict constant of the modules that
define the twin's models and rules, and the plain defaults of their dataclass fields (e.g.
``ScoreForecaster.prior_weight``). Changing a threshold, a learning rate or a window changes
the id; refactoring code without changing a number does not. Computed from the code, so every
twin written by one build under one version carries the same id.

The registry is data: a :class:`ModelVersion` is a name and overrides of some of those
parameters (the ones in :data:`TUNABLE`: the severity forecaster's, which the code takes as
:class:`~workers.twin.forecast.ForecastParams`), its id the hash of the parameters with the
overrides applied. :data:`STANDARD` is this build as it is (its id is ``MODEL_VERSION_ID``);
:data:`BUILT_IN` lists the versions shipped with the code, and a deployment may define more
(``NOVAMIND_TWIN__VERSIONS``, see :func:`registry`). A :class:`VersionPlan` names the live
version and an optional shadow (:mod:`workers.twin.shadow`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from functools import cached_property
from types import ModuleType
from typing import Any

from workers.twin import (
    conformal,
    deterioration,
    events,
    forecast,
    grid,
    monitors,
    outputs,
    policy,
    shifts,
    state,
    twin,
)
from workers.twin.exceptions import UnknownModelVersion
from workers.twin.forecast import DEFAULT_PARAMS, ForecastParams
from workers.twin.twin import LAYOUT, TwinState

MODEL_FAMILY = "novamind-twin"
PARAMETER_MODULES: tuple[ModuleType, ...] = (
    conformal,
    deterioration,
    events,
    forecast,
    grid,
    monitors,
    outputs,
    policy,
    shifts,
    state,
    twin,
)


def _plain(value: Any) -> Any:
    """``value`` as JSON-able plain data, or ``None`` when it is not a parameter (a named tuple
    such as ``forecast.DEFAULT_PARAMS`` bundles constants that are parameters themselves)."""
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return None
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


def version_id(params: Mapping[str, Any], family: str = MODEL_FAMILY) -> str:
    """The id of a model of ``family`` with these parameters (see the module docstring)."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()
    return f"{family}/{LAYOUT}:{digest[:12]}"


def _compute() -> str:
    return version_id(parameters())


MODEL_VERSION_ID = _compute()
"""The model version id of this build as it is (:data:`STANDARD`)."""

TUNABLE: dict[str, str] = {
    "forecast.ALPHA_FAST": "alpha_fast",
    "forecast.ALPHA_MID": "alpha_mid",
    "forecast.ALPHA_SLOW": "alpha_slow",
    "forecast.ALPHA_ERR": "alpha_err",
    "forecast.LINEAR_WARMUP": "linear_warmup",
    "forecast.PRIOR_WEIGHT": "prior_weight",
    "forecast.POWER": "power",
    "conformal.GAMMA": "conformal_gamma",
}
"""Parameters a version may override (key in :func:`parameters` -> ``ForecastParams`` field).
Changing any other parameter is a new build, whose :data:`STANDARD` gets a new id."""


@dataclasses.dataclass(frozen=True)
class ModelVersion:
    """A named model version: the build's parameters with some of :data:`TUNABLE` overridden.

    >>> ModelVersion("standard").id == MODEL_VERSION_ID
    True
    >>> v = ModelVersion("slow-errors", overrides=(("forecast.ALPHA_ERR", 0.01),))
    >>> v.id != MODEL_VERSION_ID, v.forecast.alpha_err
    (True, 0.01)
    """

    name: str
    overrides: tuple[tuple[str, float], ...] = ()
    note: str = ""

    def __post_init__(self) -> None:
        unknown = sorted(k for k, _ in self.overrides if k not in TUNABLE)
        if unknown:
            raise UnknownModelVersion(
                f"model version {self.name!r} overrides {', '.join(unknown)}; a version may change "
                f"only {', '.join(TUNABLE)}"
            )
        standard = parameters()
        plain: list[tuple[str, float]] = []
        for key, value in self.overrides:
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise UnknownModelVersion(f"model version {self.name!r}: {key} must be a number >= 0")
            # 8 and 8.0 are one parameter value: take the type of the build's value
            integral = isinstance(standard[key], int) and float(value).is_integer()
            plain.append((key, int(value) if integral else float(value)))
        object.__setattr__(self, "overrides", tuple(sorted(plain)))

    @cached_property
    def id(self) -> str:
        """The model version id: family, layout and a hash of the parameters."""
        return version_id({**parameters(), **dict(self.overrides)})

    @cached_property
    def forecast(self) -> ForecastParams:
        """The severity forecaster's parameters under this version."""
        changed: dict[str, Any] = {TUNABLE[k]: v for k, v in self.overrides}
        return DEFAULT_PARAMS._replace(**changed)


STANDARD = ModelVersion("standard", note="this build's parameters, unchanged")
BUILT_IN: tuple[ModelVersion, ...] = (
    STANDARD,
    ModelVersion(
        "fast-weights",
        overrides=(("forecast.ALPHA_ERR", 0.04), ("forecast.POWER", 8)),
        note="severity experts re-weighted faster and more evenly (a candidate to run in shadow)",
    ),
)
"""The versions shipped with this build."""


class VersionRegistry:
    """Known model versions, looked up by name or id."""

    def __init__(self, versions: Iterable[ModelVersion]) -> None:
        self.versions = tuple(versions)
        self._by_key: dict[str, ModelVersion] = {}
        for v in self.versions:
            if v.name in self._by_key:
                raise UnknownModelVersion(f"model version name {v.name!r} is defined twice")
            self._by_key[v.name] = v
            self._by_key.setdefault(v.id, v)  # two names may share parameters: the first names the id

    def find(self, key: str | None) -> ModelVersion | None:
        """The version named or identified by ``key``, ``None`` when unknown."""
        return self._by_key.get(key) if key else None

    def get(self, key: str) -> ModelVersion:
        """The version named or identified by ``key``; :class:`UnknownModelVersion` when unknown."""
        found = self.find(key)
        if found is None:
            known = ", ".join(f"{v.name} ({v.id})" for v in self.versions)
            raise UnknownModelVersion(f"unknown model version {key!r}; known: {known}")
        return found


def registry(extra: Mapping[str, Mapping[str, float]] | None = None) -> VersionRegistry:
    """The built-in versions plus ``extra`` ones defined by a deployment ({name: {key: value}})."""
    defined = [
        ModelVersion(name, overrides=tuple(o.items()), note="defined by the deployment")
        for name, o in sorted((extra or {}).items())
    ]
    return VersionRegistry((*BUILT_IN, *defined))


@dataclasses.dataclass(frozen=True)
class VersionPlan:
    """The live model version, and the one run in shadow beside it (if any)."""

    live: ModelVersion = STANDARD
    shadow: ModelVersion | None = None

    def __post_init__(self) -> None:
        if self.shadow is not None and self.shadow.id == self.live.id:
            object.__setattr__(self, "shadow", None)  # already live: nothing to compare


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


def plan_of(
    versions: VersionRegistry, *, live: str, shadow: str | None = None, promoted: str | None = None
) -> VersionPlan:
    """The plan a worker runs: the ``promoted`` live version when there is one this build knows
    (else the configured ``live``), and the configured ``shadow`` unless it is the live one
    (which it is once promoted).

    Raises
    ------
    UnknownModelVersion
        ``live`` or ``shadow`` names no known version.
    """
    live_version = versions.find(promoted) or versions.get(live)
    return VersionPlan(live_version, versions.get(shadow) if shadow else None)
