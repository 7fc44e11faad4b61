"""PHQ-9 / GAD-7 Observations (panel with items, or a total alone) -> AssessmentResult.

Panels may reference item Observations that come later in the stream, so everything is
collected first and assembled by :meth:`AssessmentCollector.finish`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any

from connectors.ehr import codes
from connectors.ehr.clinical import MapContext, Records, codings, loinc_codes, observation_time
from connectors.exceptions import FhirMappingError
from connectors.records import band_for_total, score_assessment

ORDINAL_URLS = ("http://hl7.org/fhir/StructureDefinition/ordinalValue",
                "http://hl7.org/fhir/StructureDefinition/itemWeight",
                "http://hl7.org/fhir/StructureDefinition/iso21090-CO-value")
Deferred = tuple[str, str, str, Callable[[str], Records]]  # subject, location, id, build(pid)


def item_score(holder: Any) -> int:
    """Score 0..3 from valueInteger / valueQuantity / valueCodeableConcept (LL358-3 or ordinal)."""
    raw: Any = holder.valueInteger
    if raw is None and holder.valueQuantity is not None:
        raw = holder.valueQuantity.value
    if raw is None:
        for coding in codings(holder.valueCodeableConcept):
            if coding.code in codes.ANSWER_SCORES:
                raw = codes.ANSWER_SCORES[coding.code]
                break
            ext = next((e for e in coding.extension or () if e.url in ORDINAL_URLS), None)
            if ext is not None:
                raw = ext.valueDecimal if ext.valueDecimal is not None else ext.valueInteger
                break
    if isinstance(raw, Decimal | float) and raw == int(raw):
        raw = int(raw)
    if not isinstance(raw, int) or not 0 <= raw <= 3:
        raise FhirMappingError(f"item answer {raw!r} is not a score 0..3")
    return raw


def _stated_total(obs: Any) -> int | None:
    if obs.valueInteger is not None:
        return int(obs.valueInteger)
    if obs.valueQuantity is not None and obs.valueQuantity.value is not None:
        return int(obs.valueQuantity.value)
    return None


@dataclass(slots=True)
class _Panel:
    obs: Any
    instrument: str
    subject: str
    location: str
    when: datetime
    items: dict[str, int] = field(default_factory=dict)
    members: list[str] = field(default_factory=list)
    total: int | None = None


@dataclass
class AssessmentCollector:
    """Collects panels, item answers and totals; ``finish`` assembles AssessmentResults."""

    ctx: MapContext
    item_scores: dict[str, tuple[str, Any]] = field(default_factory=dict)
    panels: list[_Panel] = field(default_factory=list)
    totals: list[_Panel] = field(default_factory=list)

    def accepts(self, code: str) -> bool:
        return code in codes.PANELS or code in codes.TOTALS or code in codes.ITEM_CODES

    def add(self, obs: Any, subject: str, location: str, keys: list[str]) -> None:
        """Remember one PHQ-9/GAD-7 related Observation (panel, total or item)."""
        found = loinc_codes(obs.code)
        code = next(c for c in found if self.accepts(c))
        if code in codes.ITEM_CODES:
            for key in keys:
                self.item_scores[key] = (code, obs)
            return
        instrument = codes.PANELS.get(code) or codes.TOTALS[code]
        entry = _Panel(obs, instrument, subject, location, observation_time(obs),
                       total=_stated_total(obs))
        if code in codes.TOTALS:
            self.totals.append(entry)
            return
        for comp in obs.component or ():
            item = next((c for c in loinc_codes(comp.code) if c in codes.ITEM_CODES), None)
            if item is not None:
                entry.items[item] = item_score(comp)
        entry.members = [m.reference for m in obs.hasMember or () if m.reference]
        self.panels.append(entry)

    def finish(self, resolve: Callable[[str], str | None]) -> Iterator[Deferred]:
        """Yield one deferred build per panel and per total not covered by a panel."""
        covered: set[tuple[str | None, str, datetime]] = set()
        by_key = {(resolve(t.subject), t.instrument, t.when): t for t in self.totals}
        for panel in self.panels:
            key = (resolve(panel.subject), panel.instrument, panel.when)
            covered.add(key)
            total = by_key.get(key)
            yield (panel.subject, panel.location, str(panel.obs.id),
                   partial(self._build, panel=panel, total=total))
        for total in self.totals:
            if (resolve(total.subject), total.instrument, total.when) not in covered:
                yield (total.subject, total.location, str(total.obs.id),
                       partial(self._build, panel=None, total=total))

    def _items(self, panel: _Panel) -> list[int]:
        answers = dict(panel.items)
        for ref in panel.members:
            if ref not in self.item_scores:
                raise FhirMappingError(f"hasMember {ref} not found in the input")
            code, member = self.item_scores[ref]
            answers[code] = item_score(member)
        order = codes.ITEMS[panel.instrument]
        missing = [c for c in order if c not in answers]
        if missing:
            raise FhirMappingError(f"{panel.instrument} panel lacks items {missing}")
        return [answers[c] for c in order]

    def _build(self, pid: str, panel: _Panel | None, total: _Panel | None) -> Records:
        head = panel or total
        assert head is not None
        loinc_total = codes.PHQ9_TOTAL if head.instrument == "PHQ9" else codes.GAD7_TOTAL
        if panel is not None:
            items = self._items(panel)
            computed, band, item9 = score_assessment(panel.instrument, items)
            for stated in (panel.total, total.total if total else None):
                if stated is not None and stated != computed:
                    raise FhirMappingError(
                        f"stated total {stated} differs from item sum {computed}")
        else:
            assert total is not None
            if total.total is None:
                raise FhirMappingError("total score Observation has no value")
            items, computed, item9 = [], total.total, False
            band = band_for_total(total.instrument, computed)
            if band == "UNKNOWN":
                raise FhirMappingError(f"{total.instrument} total {computed} out of range")
        rec = self.ctx.envelope(head.obs, "AssessmentResult", pid, head.when)
        rec.update(submission_id=f"{self.ctx.source}:Observation/{head.obs.id}",
                   instrument=head.instrument, item_responses=items, total=computed,
                   band=band, item9_positive=item9, loinc_total=loinc_total)
        return [("AssessmentResult", rec)]
