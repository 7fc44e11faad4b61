"""PHQ-9 / GAD-7 Observations (panel with items, or a total alone) -> AssessmentResult.

Panels may reference item Observations that come later in the stream, so everything is
collected first and assembled by :meth:`AssessmentCollector.finish`. Every collected resource
ends up in exactly one :class:`~connectors.ehr.clinical.Deferred`, so the mapper can count it as
mapped or rejected.

A PHQ-9 item-9 Observation (LOINC 44260-8, thoughts of self-harm) whose answer no PHQ-9 result
of the input carries becomes a ``PHQ9_ITEM9`` AssessmentResult of its own (a single-item
screen, see :mod:`schemas.assessments`), so a positive answer always reaches the safety alert:
EHRs and screening apps record item 9 alone, and an incremental sync may carry it without its
panel. When a PHQ-9 panel of the input carries it (by ``hasMember``, or as a component at the
same time with the same answer) and is scored, the panel's result is the only one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
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
    to_utc,
)
from connectors.exceptions import FhirMappingError, FhirSkip
from connectors.records import (
    band_for_total,
    current_version,
    envelope,
    event_id,
    score_assessment,
)
from schemas.assessments import instrument_spec

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
        raise FhirMappingError(f"{where} is not a whole-number score")  # free text is not echoed
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


@dataclass(slots=True)
class _Item:
    code: str
    obs: Any
    origin: Origin
    pid: str


@dataclass
class AssessmentCollector:
    """Collects panels, item answers and totals; ``finish`` assembles AssessmentResults."""

    ctx: MapContext
    item_scores: dict[str, _Item] = field(default_factory=dict)
    items: list[_Item] = field(default_factory=list)
    panels: list[_Panel] = field(default_factory=list)
    totals: list[_Panel] = field(default_factory=list)
    responses: list[tuple[Any, str, Origin, list[str]]] = field(default_factory=list)
    scored_responses: set[str] = field(default_factory=set)  # references of those that scored
    carried_item9: set[Origin] = field(default_factory=set)  # PHQ-9 panels whose result has item 9
    skipped_panels: set[Origin] = field(default_factory=set)  # same as a scored response

    def accepts(self, code: str) -> bool:
        return code in codes.PANELS or code in codes.TOTALS or code in codes.ITEM_CODES

    def add(self, obs: Any, pid: str, origin: Origin, keys: list[str]) -> None:
        """Remember one PHQ-9/GAD-7 related Observation (panel, total or item)."""
        found = loinc_codes(obs.code)
        code = next(c for c in found if self.accepts(c))
        if code in codes.ITEM_CODES:
            item = _Item(code, obs, origin, pid)
            for key in keys:
                self.item_scores[key] = item
            self.items.append(item)
            return
        instrument = codes.PANELS.get(code) or codes.TOTALS[code]
        entry = _Panel(obs, origin, instrument, pid, observation_time(obs),
                       total=stated_total(obs))
        if code in codes.TOTALS:
            self.totals.append(entry)
            return
        for comp in obs.component or ():
            item_code = next((c for c in loinc_codes(comp.code) if c in codes.ITEM_CODES), None)
            if item_code is not None:
                entry.items[item_code] = item_score(comp)
        entry.members = [m.reference for m in obs.hasMember or () if m.reference]
        self.panels.append(entry)

    def add_response(self, qr: Any, pid: str, origin: Origin, keys: list[str]) -> None:
        """Remember a PHQ-9 / GAD-7 QuestionnaireResponse (checked by :func:`questionnaire`)."""
        self.responses.append((qr, pid, origin, keys))

    def finish(self) -> Iterator[Deferred]:
        """One deferred build per QuestionnaireResponse, per panel, per total not covered by a
        panel, per PHQ-9 item-9 Observation, and a rejection for each other item Observation
        that no panel references. Panels and totals derived from a QuestionnaireResponse in the
        same input are the same assessment: they are skipped when the response scored (and
        share its event id when they arrive on their own or the response was rejected).

        An item-9 Observation is built after the panel that carries it: it went into that
        panel's record when the panel scored (no second result), and becomes a ``PHQ9_ITEM9``
        screen when the panel was rejected or is not a PHQ-9 panel, or when no panel carries it.
        """
        for qr, pid, origin, keys in self.responses:  # built before the panels are yielded
            yield Deferred(pid, [origin], partial(self._response, qr, pid, keys))
        used: set[Origin] = set()
        by_key = {(t.pid, t.instrument, t.when): t for t in self.totals}
        covered: set[tuple[str, str, datetime]] = set()
        screens: list[tuple[_Item, _Panel | None]] = []
        build: Callable[[], Records]
        for panel in self.panels:
            key = (panel.pid, panel.instrument, panel.when)
            covered.add(key)
            total = by_key.get(key)
            members = [panel.origin] + ([total.origin] if total else [])
            for ref in panel.members:
                item = self.item_scores.get(ref)
                if item is not None and item.origin not in used:
                    used.add(item.origin)
                    if item.code == codes.PHQ9_ITEM9:
                        screens.append((item, panel))
                    else:
                        members.append(item.origin)
            build = (partial(self._same_panel, panel) if self._derived(panel.obs)
                     else partial(self._build, panel=panel, total=total))
            yield Deferred(panel.pid, members, build)
        for total in self.totals:
            if (total.pid, total.instrument, total.when) not in covered:
                build = (_same_as_response if self._derived(total.obs)
                         else partial(self._build, panel=None, total=total))
                yield Deferred(total.pid, [total.origin], build)
        for item in self.items:
            if item.origin not in used and item.code == codes.PHQ9_ITEM9:
                screens.append((item, self._inline_item9(item)))
        for item, carrier in screens:  # after every panel has been built
            yield Deferred(item.pid, [item.origin], partial(self._screen, item, carrier))
        for item in self.items:
            if item.origin not in used and item.code != codes.PHQ9_ITEM9:
                yield Deferred(None, [item.origin], partial(_unused_item))

    def _derived(self, obs: Any) -> bool:
        return any(d.reference in self.scored_responses for d in obs.derivedFrom or ())

    def _inline_item9(self, item: _Item) -> _Panel | None:
        """The PHQ-9 panel of the same patient and time that has this item-9 answer among its
        components (the same answer recorded twice, not referenced by ``hasMember``)."""
        try:
            when, answer = observation_time(item.obs), item_score(item.obs)
        except FhirMappingError:
            return None  # the screen build reports why
        return next((p for p in self.panels if p.instrument == "PHQ9" and p.pid == item.pid
                     and p.when == when and p.items.get(codes.PHQ9_ITEM9) == answer), None)

    def _same_panel(self, panel: _Panel) -> Records:
        self.skipped_panels.add(panel.origin)
        return _same_as_response()

    def _screen(self, item: _Item, panel: _Panel | None) -> Records:
        """The item-9 Observation's own ``PHQ9_ITEM9`` result, unless a PHQ-9 result of this
        input already carries its answer (then it is mapped into that record, or skipped with
        the panel that is the same as a scored QuestionnaireResponse)."""
        if panel is not None and panel.instrument == "PHQ9":
            if panel.origin in self.carried_item9:
                return []
            if panel.origin in self.skipped_panels:
                raise FhirSkip("Observation:derived-from-QuestionnaireResponse")
        if self._derived(item.obs):
            raise FhirSkip("Observation:derived-from-QuestionnaireResponse")
        answer = item_score(item.obs)
        total, band, item9 = score_assessment("PHQ9_ITEM9", [answer])
        return [assessment_result(self.ctx, item.obs, item.pid, observation_time(item.obs),
                                  "PHQ9_ITEM9", [answer], total, band, item9)]

    def _response(self, qr: Any, pid: str, keys: list[str]) -> Records:
        records = response_result(self.ctx, qr, pid)
        self.scored_responses.update(keys)
        return records

    def _items(self, panel: _Panel) -> list[int]:
        """Item scores in instrument order; members that are not items (the total, the
        PHQ-9 difficulty question) are passed over, missing items are an error."""
        answers = dict(panel.items)
        unresolved = []
        for ref in panel.members:
            if ref in self.item_scores:
                member = self.item_scores[ref]
                answers[member.code] = item_score(member.obs)
            else:
                unresolved.append(ref)
        order = codes.ITEMS[panel.instrument]
        missing = [c for c in order if c not in answers]
        if missing:
            absent = f"; hasMember not found in the input: {', '.join(unresolved)}" if unresolved else ""
            raise FhirMappingError(f"{panel.instrument} panel lacks items {missing}{absent}")
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
        origin = next((d.reference for d in head.obs.derivedFrom or () if d.reference
                       and d.reference.startswith("QuestionnaireResponse/")), None)
        records = [assessment_result(self.ctx, head.obs, head.pid, head.when, head.instrument,
                                     items, computed, band, item9, same_as=origin)]
        if panel is not None and panel.instrument == "PHQ9":
            self.carried_item9.add(panel.origin)
        return records


def assessment_result(ctx: MapContext, resource: Any, pid: str, when: datetime, instrument: str,
                      items: list[int], total: int, band: str, item9: bool,
                      same_as: str | None = None) -> tuple[str, dict[str, Any]]:
    """The AssessmentResult record of one scored PHQ-9 / GAD-7 / PHQ-9 item-9 resource.

    ``same_as`` (``QuestionnaireResponse/<id>`` an Observation was derived from) gives the
    record that response's event id, so the two arrive as one assessment. ``loinc_total`` is
    the instrument's total code (the item-9 question 44260-8 for a ``PHQ9_ITEM9`` screen).
    """
    loinc_total = instrument_spec(instrument).total_loinc
    rid = same_as or f"{resource.get_resource_type()}/{resource.id}"
    rec = envelope(eid=event_id(ctx.source, rid, "AssessmentResult"), patient_id=pid,
                   event_time=when, received_time=ctx.received_time, source=ctx.source,
                   schema_version=current_version("AssessmentResult"))
    rec.update(submission_id=f"{ctx.source}:{rid}",
               instrument=instrument, item_responses=items, total=total, band=band,
               item9_positive=item9, loinc_total=loinc_total)
    return ("AssessmentResult", rec)


def _unused_item() -> Records:
    raise FhirMappingError("PHQ-9/GAD-7 item Observation is not a member of any panel in the input")


def _same_as_response() -> Records:
    raise FhirSkip("Observation:derived-from-QuestionnaireResponse")


# ------------------------------------------------------------------ QuestionnaireResponse
_LOINC_IN_LINK = re.compile(r"(\d{4,5}-\d)")
_ORDINAL_LINK = re.compile(r"(\d{1,2})$")
_NAMED = (("PHQ9", re.compile(r"phq-?9(?!\d)", re.IGNORECASE)),
          ("GAD7", re.compile(r"gad-?7(?!\d)", re.IGNORECASE)))
SCORED_STATUSES = frozenset({"completed", "amended"})


def _flat_items(items: Any) -> Iterator[Any]:
    for item in items or ():
        yield item
        yield from _flat_items(item.item)
        for answer in item.answer or ():
            yield from _flat_items(answer.item)


def _link_code(item: Any) -> str | None:
    match = _LOINC_IN_LINK.search(item.linkId or "")
    return match.group(1) if match else None


def questionnaire(qr: Any) -> tuple[str, bool] | None:
    """(instrument, by_code) of a PHQ-9 / GAD-7 QuestionnaireResponse, or None for another
    questionnaire. Known from the questionnaire canonical holding the panel LOINC (44249-1,
    69737-5), or from item linkIds holding item LOINC codes; a canonical only naming the
    instrument (``.../phq-9``) means items are numbered by linkId (``PHQ.1`` .. ``PHQ.9``)."""
    canonical = qr.questionnaire or ""
    linked = {_link_code(i) for i in _flat_items(qr.item)}
    for instrument in ("PHQ9", "GAD7"):
        panel = codes.PHQ9_PANEL if instrument == "PHQ9" else codes.GAD7_PANEL
        if panel in canonical or linked & set(codes.ITEMS[instrument]):
            return instrument, bool(linked & set(codes.ITEMS[instrument]))
    for instrument, pattern in _NAMED:
        if pattern.search(canonical):
            return instrument, False
    return None


def _answer_text(text: str | None) -> int | None:
    """The LL358-3 answer text ("Several days", "Nearly everyday") -> 0..3, else None."""
    key = re.sub(r"[^a-z]", "", (text or "").lower())
    return codes.ANSWER_TEXTS.get(key)


def answer_score(answer: Any) -> int:
    """Score 0..3 of one answer: a LOINC answer code (LA6568-5 .. LA6571-9), an ordinal
    extension on the coding, the answer list's wording (coding display or valueString), or
    a valueInteger / integral valueDecimal."""
    coding = answer.valueCoding
    raw: Any = None
    if coding is not None:
        ext = next((e for e in coding.extension or () if e.url in ORDINAL_URLS), None)
        if coding.code in codes.ANSWER_SCORES:
            raw = codes.ANSWER_SCORES[coding.code]
        elif ext is not None:
            raw = ext.valueDecimal if ext.valueDecimal is not None else ext.valueInteger
        else:  # a local code: its wording; another LOINC answer is not a PHQ/GAD answer
            raw = _answer_text(coding.display) if coding.system != codes.LOINC else None
            if raw is None:
                raise FhirMappingError(f"answer code {coding.code!r} is not a PHQ/GAD answer")
    elif answer.valueInteger is not None:
        raw = answer.valueInteger
    elif answer.valueDecimal is not None:
        raw = answer.valueDecimal
    elif answer.valueString is not None:
        raw = _answer_text(answer.valueString)
        if raw is None:
            raise FhirMappingError("answer text is not a PHQ/GAD answer")  # free text is not echoed
    if raw is None:
        raise FhirMappingError("answer has no valueCoding, valueInteger or valueDecimal")
    score = whole_number(raw, "answer")
    if not 0 <= score <= 3:
        raise FhirMappingError(f"item answer {score} is not a score 0..3")
    return score


def _answer_total(answer: Any) -> int:
    for name in ("valueInteger", "valueDecimal", "valueString"):
        value = getattr(answer, name)
        if value is not None:
            return whole_number(value, name)
    if answer.valueQuantity is not None and answer.valueQuantity.value is not None:
        return whole_number(answer.valueQuantity.value, "valueQuantity.value")
    raise FhirMappingError("total score answer is not a number")


def response_result(ctx: MapContext, qr: Any, pid: str) -> Records:
    """A PHQ-9 / GAD-7 QuestionnaireResponse -> one AssessmentResult (items, total, band,
    item-9 flag); a stated total item must equal the item sum."""
    found = questionnaire(qr)
    assert found is not None
    instrument, by_code = found
    order = codes.ITEMS[instrument]
    total_code = codes.PHQ9_TOTAL if instrument == "PHQ9" else codes.GAD7_TOTAL
    answers: dict[str, int] = {}
    stated: int | None = None
    for item in _flat_items(qr.item):
        if not item.answer:
            continue
        code = _link_code(item)
        if code is None and not by_code:
            match = _ORDINAL_LINK.search(item.linkId or "")
            number = int(match.group(1)) if match else 0
            code = order[number - 1] if 1 <= number <= len(order) else None
        try:
            if code in order:
                answers[code] = answer_score(item.answer[0])
            elif code == total_code:
                stated = _answer_total(item.answer[0])
        except FhirMappingError as exc:
            raise FhirMappingError(f"item {item.linkId}: {exc}") from exc
    missing = [c for c in order if c not in answers]
    if missing:
        raise FhirMappingError(f"{instrument} QuestionnaireResponse lacks answers to {missing}")
    items = [answers[c] for c in order]
    total, band, item9 = score_assessment(instrument, items)
    if stated is not None and stated != total:
        raise FhirMappingError(f"stated total {stated} differs from item sum {total}")
    when = to_utc(qr.authored)
    if when is None:
        raise FhirMappingError("QuestionnaireResponse has no authored time")
    return [assessment_result(ctx, qr, pid, when, instrument, items, total, band, item9)]
