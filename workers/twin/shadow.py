"""A model version in shadow: its twin beside the live one, scored on the same targets.

The shadow twin is a second :class:`~workers.twin.twin.TwinState` of the patient, started as a
copy of the live twin (before the input that starts it) and then fed every input the live twin
gets, under the shadow version's parameters. Its outputs are dropped: nothing it computes is
published. Both forecasters score each forecast before learning from its target (progressive
validation), so an input that scores a forecast in both twins gives one *pair*: the two
absolute errors of the next-day severity forecast on the same target, whether each 80%
interval covered it, and likewise for the next PHQ-9 total. :class:`PairedMetrics` sums the
pairs per patient; :mod:`workers.twin.promotion` decides from them.

Pairs are read off the forecasters' own running counters (the change of ``n`` and of the
summed absolute error across one input), so the scoring is exactly the one each twin keeps.
Pure and deterministic like the ``apply_*`` functions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, NamedTuple

from workers.twin.twin import TwinState


class Marks(NamedTuple):
    """A twin's progressive-validation counters at one moment."""

    scored: int
    abs_error: float
    intervals: int
    covered: int
    phq9_scored: int
    phq9_abs_error: float


def marks(state: TwinState) -> Marks:
    """The counters of ``state``'s forecasters."""
    sev, phq9 = state.severity, state.phq9_model.model
    return Marks(
        sev.published.n,
        sev.published.total,
        sev.conformal.scored,
        sev.conformal.covered,
        phq9.n,
        phq9.total,
    )


@dataclass
class PairedMetrics:
    """Sums over the pairs of one patient (or of a cohort, see :meth:`add`).

    Attributes
    ----------
    pairs
        Next-day severity forecasts that both twins scored on the same target.
    live_abs, shadow_abs
        Their summed absolute errors.
    shadow_better, live_better
        Pairs where one error was strictly smaller.
    intervals, live_covered, shadow_covered
        Targets both 80% intervals were scored on, and how many each covered.
    phq9_pairs, phq9_live_abs, phq9_shadow_abs
        The same for the next PHQ-9 total.
    """

    pairs: int = 0
    live_abs: float = 0.0
    shadow_abs: float = 0.0
    shadow_better: int = 0
    live_better: int = 0
    intervals: int = 0
    live_covered: int = 0
    shadow_covered: int = 0
    phq9_pairs: int = 0
    phq9_live_abs: float = 0.0
    phq9_shadow_abs: float = 0.0

    def observe(self, live: tuple[Marks, Marks], shadow: tuple[Marks, Marks]) -> None:
        """Add the pairs one input scored: ``(before, after)`` counters of each twin."""
        (lb, la), (sb, sa) = live, shadow
        if la.scored == lb.scored + 1 and sa.scored == sb.scored + 1:
            le, se = la.abs_error - lb.abs_error, sa.abs_error - sb.abs_error
            self.pairs += 1
            self.live_abs += le
            self.shadow_abs += se
            self.shadow_better += se < le
            self.live_better += le < se
        if la.intervals == lb.intervals + 1 and sa.intervals == sb.intervals + 1:
            self.intervals += 1
            self.live_covered += la.covered - lb.covered
            self.shadow_covered += sa.covered - sb.covered
        if la.phq9_scored == lb.phq9_scored + 1 and sa.phq9_scored == sb.phq9_scored + 1:
            self.phq9_pairs += 1
            self.phq9_live_abs += la.phq9_abs_error - lb.phq9_abs_error
            self.phq9_shadow_abs += sa.phq9_abs_error - sb.phq9_abs_error

    def add(self, other: PairedMetrics) -> None:
        """Add another patient's sums (a cohort's aggregate)."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @property
    def live_mae(self) -> float | None:
        return self.live_abs / self.pairs if self.pairs else None

    @property
    def shadow_mae(self) -> float | None:
        return self.shadow_abs / self.pairs if self.pairs else None

    @property
    def live_coverage(self) -> float | None:
        return self.live_covered / self.intervals if self.intervals else None

    @property
    def shadow_coverage(self) -> float | None:
        return self.shadow_covered / self.intervals if self.intervals else None

    @property
    def phq9_live_mae(self) -> float | None:
        return self.phq9_live_abs / self.phq9_pairs if self.phq9_pairs else None

    @property
    def phq9_shadow_mae(self) -> float | None:
        return self.phq9_shadow_abs / self.phq9_pairs if self.phq9_pairs else None

    def to_dict(self) -> dict[str, Any]:
        """The sums and the derived MAEs and coverages (for the ``twins`` document)."""
        derived = {
            name: getattr(self, name)
            for name in (
                "live_mae",
                "shadow_mae",
                "live_coverage",
                "shadow_coverage",
                "phq9_live_mae",
                "phq9_shadow_mae",
            )
        }
        return {**asdict(self), **derived}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> PairedMetrics:
        """Rebuild from :meth:`to_dict` (derived values ignored)."""
        return cls(**{f.name: doc[f.name] for f in fields(cls) if f.name in doc})


@dataclass
class Shadow:
    """A patient's shadow twin: its version, state, where it started and its paired metrics."""

    version_id: str
    state: TwinState
    started_offset: int
    paired: PairedMetrics = field(default_factory=PairedMetrics)
