"""Reading twin states stored by an earlier layout of the twin.

Layout 1 is the twin before issue #16 (up to commit fd81b2c): deterioration by river's
Page-Hinkley in ``workers.twin.monitors.DeteriorationMonitor``, the PHQ-9/GAD-7 forecaster on
level differences (``level_at_last``, ``sxx``, ``sxy``), no conformal interval and no
biometric shift CUSUMs. Layout 2 (up to 35e4613) lacks the severity forecaster's report-grid
shares (``SeverityForecaster.grid_share``), which start empty: the published forecast is the
ensemble's mean until a few reported days have taught them; and the interval's centre
(``pending_centre``), which the next forecast sets. Layout 3 is the current one. A
stored twin keeps everything that
still means the same; what the new models need and the old state cannot supply starts
fresh and learns from the next input on:

- ``TwinState.shift`` (biometric shift CUSUMs): empty; its CUSUMs run once the anomaly
  detector's personal statistics (kept) have ``MIN_DAYS`` days, which an upgraded twin
  usually already has.
- ``SeverityForecaster.conformal`` and ``pending_interval``: empty window; the 80% interval
  appears after ``MIN_SCORES`` scored days. The experts, weights and errors are kept.
- ``ScoreForecaster`` (PHQ-9, GAD-7): the per-patient calibration line starts from the
  population line with the current parameters (the old difference moments do not give the
  paired means it needs); the last total and both running errors are kept.
- ``DeteriorationMonitor``: the new rules' state is seeded from the old monitor: the last
  seven severities, the old PHQ-9 baseline as one earlier total, the last PHQ-9 total, and
  the active flag with its age, so an episode raised by the old monitor is neither cleared
  nor raised again at the next input (its ``rule`` reads ``PAGE_HINKLEY_V1``). Without an
  active episode the 56-day baseline window starts from those seven severities (a baseline
  after ``MIN_BASELINE_DAYS`` reports). During one, the window does not learn, so it holds
  ``MIN_BASELINE_DAYS`` copies of the old baseline (frozen at the episode's start, the
  pre-episode level): the episode clears by the new rule once the 7-day mean is back near
  that level, with the spread at its floor ``MIN_SCALE`` until real days refill the window.

Every dataclass of the twin is then rebuilt field by field in declaration order: fields
missing from the stored state get their declared defaults and attributes that are no longer
fields are dropped, so an upgraded state serializes like one built by the current code. A
state records its layout (``TwinState.layout``, missing in layout 1), so a current state is
returned as it is without walking the tree. Deterministic; works in place on a state just
unpickled.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from workers.twin.deterioration import MIN_BASELINE_DAYS, RECENT_DAYS, DeteriorationMonitor
from workers.twin.forecast import ScoreForecaster
from workers.twin.twin import LAYOUT, Assessment, TwinState

LEGACY_RULE = "PAGE_HINKLEY_V1"
"""``rule`` of a deterioration raised by the layout-1 monitor and carried over."""


class LegacyObject:
    """Attribute bag standing in for a class that no longer exists (read, then discarded)."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple):  # (dict, slots) from objects with __slots__
            state = {**(state[0] or {}), **(state[1] or {})}
        self.__dict__.update(state)


class LegacyDeteriorationMonitor(LegacyObject):
    """Layout-1 ``workers.twin.monitors.DeteriorationMonitor``."""


class LegacyPageHinkley(LegacyObject):
    """Layout-1 ``workers.twin.monitors.UpwardPageHinkley`` (dropped on upgrade)."""


LEGACY_CLASSES: dict[tuple[str, str], type] = {
    ("workers.twin.monitors", "DeteriorationMonitor"): LegacyDeteriorationMonitor,
    ("workers.twin.monitors", "UpwardPageHinkley"): LegacyPageHinkley,
}
"""Classes of earlier layouts that the unpickler maps to attribute bags."""


def upgrade(state: TwinState) -> TwinState:
    """Bring a freshly unpickled state to the current layout (in place; returns it).

    Must only be given a state just rebuilt from bytes: it is modified in place.
    """
    if state.__dict__.get("layout") == LAYOUT:
        return state
    if isinstance(state.__dict__.get("deterioration"), LegacyDeteriorationMonitor):
        state.__dict__["deterioration"] = _deterioration(state.__dict__["deterioration"], state.phq9)
    for name in ("phq9_model", "gad7_model"):
        model = state.__dict__.get(name)
        if isinstance(model, ScoreForecaster) and "sxx" in model.__dict__:
            state.__dict__[name] = _score_forecaster(name, model)
    state.__dict__.pop("layout", None)  # filled with the current LAYOUT below
    _complete(state)
    return state


def _deterioration(old: LegacyDeteriorationMonitor, phq9: Assessment | None) -> DeteriorationMonitor:
    d = old.__dict__
    active = bool(d.get("active", False))
    recent = [float(v) for v in d.get("recent", [])][-RECENT_DAYS:]
    phq9_base = d.get("phq9_baseline")
    base = d.get("baseline")
    # during an episode the window does not learn: hold the old frozen (pre-episode) baseline
    frozen = [] if base is None else [float(base)] * MIN_BASELINE_DAYS
    window = frozen if active else list(recent)
    return DeteriorationMonitor(
        window=window,
        recent=[*recent],
        phq9_totals=[] if phq9_base is None else [round(float(phq9_base))],
        phq9_last=None if phq9 is None else int(phq9.total),
        active=active,
        active_days=int(d.get("active_days", 0)) if active else 0,
        rule=LEGACY_RULE if active else None,
        n=int(d.get("n", 0)),
    )


def _score_forecaster(name: str, old: ScoreForecaster) -> ScoreForecaster:
    spec = next(f for f in dataclasses.fields(TwinState) if f.name == name)
    fresh: ScoreForecaster = spec.default_factory()  # type: ignore[operator]
    d = old.__dict__
    fresh.last_total = d.get("last_total")
    fresh.model = d.get("model", fresh.model)
    fresh.persistence = d.get("persistence", fresh.persistence)
    return fresh


def _complete(obj: Any) -> None:
    """Rebuild every twin dataclass in ``obj``'s tree in field order, filling defaults."""
    if isinstance(obj, dict):
        for value in obj.values():
            _complete(value)
        return
    if isinstance(obj, list):
        for value in obj:
            _complete(value)
        return
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        return
    if not type(obj).__module__.startswith("workers.twin."):
        return
    stored = obj.__dict__
    rebuilt: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        if f.name in stored:
            rebuilt[f.name] = stored[f.name]
        elif f.default is not dataclasses.MISSING:
            rebuilt[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            rebuilt[f.name] = f.default_factory()
        else:
            raise ValueError(f"{type(obj).__name__}.{f.name} has no stored value or default")
        _complete(rebuilt[f.name])
    if list(rebuilt) != list(stored) or any(rebuilt[k] is not stored[k] for k in rebuilt):
        obj.__dict__.clear()
        obj.__dict__.update(rebuilt)
