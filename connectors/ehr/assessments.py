"""PHQ-9 / GAD-7 Observations (panel with items, or a total alone) -> AssessmentResult.

Panels may reference item Observations that come later in the stream, so everything is
collected first and assembled by :meth:`AssessmentCollector.finish`. Every collected resource
ends up in exactly one :class:`~connectors.ehr.clinical.Deferred`, so the mapper can count it as
mapped or rejected.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any

from connectors.ehr import codes
from connectors.ehr.clinical import (
    Deferred,
    MapContext,
    Origin,
    Records,
    codings,
    loinc_codes,
    observation_time,
)
from connectors.exceptions import FhirMappingError
from connectors.records import band_for_total, score_assessment

ORDINAL_URLS = ("http://hl7.org/fhir/StructureDefinition/ordinalValue",
                "http://hl7.org/fhir/StructureDefinition/itemWeight",
                "http://hl7.org/fhir/StructureDefinition/iso21090-CO-value")
_WHOLE = re.compile(r"^\+?(\d{1,3})(?:\.0*)?$")
_VALUE_FIELDS = ("valueCodeableConcept", "valueBoolean", "valueRange", "valueRatio",
                 "valueSampledData", "valueTime", "valueDateTime", "valuePeriod")


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


def whole_number(value: Any, where: str) -> int:
    """An integral number from an int, Decimal/float or numeric string, else FhirMappingError."""
    if isinstance(value, bool):
        raise FhirMappingError(f"{where} {value!r} is not a whole-number score")
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal | float):
        if value == int(value):
            return int(value)
        raise FhirMappingError(f"{where} {value} is not a whole-number score")
    match = _WHOLE.match(str(value).strip())
    if match is None:
        raise FhirMappingError(f"{where} {str(value)[:20]!r} is not a whole-number score")
    return int(match.group(1))


def stated_total(obs: Any) -> int | None:
    """The total score stated by a total (or panel) Observation; None when it states none.

    Read from ``valueInteger``, ``valueQuantity.value`` or a numeric ``valueString`` ("12");
    any other value[x] is a :class:`FhirMappingError` naming it.
    """
    if obs.valueInteger is not None:
        return whole_number(obs.valueInteger, "valueInteger")
    if obs.valueQuantity is not None:
        if obs.valueQuantity.value is None:
            raise FhirMappingError("total score valueQuantity has no value")
        return whole_number(obs.valueQuantity.value, "valueQuantity.value")
    if obs.valueString is not None:
        return whole_number(obs.valueString, "valueString")
    other = next((name for name in _VALUE_FIELDS if getattr(obs, name, None) is not None), None)
    if other is not None:
        raise FhirMappingError(
            f"total score in {other} is not read (valueInteger, valueQuantity or a numeric "
            "valueString)")
    return None


@dataclass(slots=True)
class _Panel:
    obs: Any
    origin: Origin
    instrument: str
    pid: str
    when: datetime
    items: dict[str, int] = field(default_factory=dict)
    members: list[str] = field(default_factory=list)
    total: int | None = None


@dataclass
class AssessmentCollector:
    """Collects panels, item answers and totals; ``finish`` assembles AssessmentResults."""

    ctx: MapContext
    item_scores: dict[str, tuple[str, Any, Origin]] = field(default_factory=dict)
    items: list[Origin] = field(default_factory=list)
    panels: list[_Panel] = field(default_factory=list)
    totals: list[_Panel] = field(default_factory=list)

    def accepts(self, code: str) -> bool:
        return code in codes.PANELS or code in codes.TOTALS or code in codes.ITEM_CODES

    def add(self, obs: Any, pid: str, origin: Origin, keys: list[str]) -> None:
        """Remember one PHQ-9/GAD-7 related Observation (panel, total or item)."""
        found = loinc_codes(obs.code)
        code = next(c for c in found if self.accepts(c))
        if code in codes.ITEM_CODES:
            for key in keys:
                self.item_scores[key] = (code, obs, origin)
            self.items.append(origin)
            return
        instrument = codes.PANELS.get(code) or codes.TOTALS[code]
        entry = _Panel(obs, origin, instrument, pid, observation_time(obs),
                       total=stated_total(obs))
        if code in codes.TOTALS:
            self.totals.append(entry)
            return
        for comp in obs.component or ():
            item = next((c for c in loinc_codes(comp.code) if c in codes.ITEM_CODES), None)
            if item is not None:
                entry.items[item] = item_score(comp)
        entry.members = [m.reference for m in obs.hasMember or () if m.reference]
        self.panels.append(entry)

    def finish(self) -> Iterator[Deferred]:
        """One deferred build per panel, per total not covered by a panel, and a rejection for
        each item Observation that no panel references."""
        used: set[Origin] = set()
        by_key = {(t.pid, t.instrument, t.when): t for t in self.totals}
        covered: set[tuple[str, str, datetime]] = set()
        for panel in self.panels:
            key = (panel.pid, panel.instrument, panel.when)
            covered.add(key)
            total = by_key.get(key)
            members = [panel.origin] + ([total.origin] if total else [])
            for ref in panel.members:
                if ref in self.item_scores and self.item_scores[ref][2] not in used:
                    used.add(self.item_scores[ref][2])
                    members.append(self.item_scores[ref][2])
            yield Deferred(panel.pid, members, partial(self._build, panel=panel, total=total))
        for total in self.totals:
            if (total.pid, total.instrument, total.when) not in covered:
                yield Deferred(total.pid, [total.origin],
                               partial(self._build, panel=None, total=total))
        for origin in self.items:
            if origin not in used:
                yield Deferred(None, [origin], partial(_unused_item))

    def _items(self, panel: _Panel) -> list[int]:
        answers = dict(panel.items)
        for ref in panel.members:
            if ref not in self.item_scores:
                raise FhirMappingError(f"hasMember {ref} not found in the input")
            code, member, _ = self.item_scores[ref]
            answers[code] = item_score(member)
        order = codes.ITEMS[panel.instrument]
        missing = [c for c in order if c not in answers]
        if missing:
            raise FhirMappingError(f"{panel.instrument} panel lacks items {missing}")
        return [answers[c] for c in order]

    def _build(self, panel: _Panel | None, total: _Panel | None) -> Records:
        head = panel or total
        assert head is not None
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
        return [assessment_result(self.ctx, head.obs, head.pid, head.when, head.instrument,
                                  items, computed, band, item9)]


def assessment_result(ctx: MapContext, resource: Any, pid: str, when: datetime, instrument: str,
                      items: list[int], total: int, band: str,
                      item9: bool) -> tuple[str, dict[str, Any]]:
    """The AssessmentResult record of one scored PHQ-9 / GAD-7 resource."""
    loinc_total = codes.PHQ9_TOTAL if instrument == "PHQ9" else codes.GAD7_TOTAL
    rec = ctx.envelope(resource, "AssessmentResult", pid, when)
    rec.update(submission_id=f"{ctx.source}:{resource.get_resource_type()}/{resource.id}",
               instrument=instrument, item_responses=items, total=total, band=band,
               item9_positive=item9, loinc_total=loinc_total)
    return ("AssessmentResult", rec)


def _unused_item() -> Records:
    raise FhirMappingError("PHQ-9/GAD-7 item Observation is not a member of any panel in the input")
