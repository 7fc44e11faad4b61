"""Clinical context of the twin: medications (response, exposure), genetics, demographics."""

from __future__ import annotations

import copy
from typing import Any

from workers.twin import cpic
from workers.twin.events import Context, context, finish, ignore, remember, seen, toggle
from workers.twin.inputs import as_mapping, number, symbol
from workers.twin.outputs import TwinOutputs
from workers.twin.twin import MedCourse, TwinState

MAX_COURSES = 12


def _gene_drug(s: TwinState, ctx: Context) -> None:
    active = [c.drug for c in s.medications.values() if c.active]
    for rec in cpic.interactions(s.phenotypes, active):
        evidence = cpic.evidence(rec)
        key = f"GENE_DRUG_INTERACTION:{rec.gene}:{rec.drug}"
        toggle(s, ctx, "GENE_DRUG_INTERACTION", True, evidence, key=key)
    for key in [k for k in s.alerts if k.startswith("GENE_DRUG_INTERACTION:")]:
        _, gene, drug = key.split(":")
        if drug not in active or cpic.lookup(gene, s.phenotypes.get(gene, ""), drug) is None:
            del s.alerts[key]


def apply_medication(state: TwinState, event: Any) -> tuple[TwinState, TwinOutputs]:
    """Apply one ``MedicationEvent`` (PRESCRIBED/STARTED open a course, STOPPED closes it).

    Keys read: ``event_id``, ``event_time``, ``received_time``, ``action``, ``drug``,
    ``dose_mg``. Opening a course records the PHQ-9/GAD-7/severity baselines its response
    is measured against, then re-checks CPIC gene-drug rows.
    """
    m = as_mapping(event)
    key = f"med:{m.get('event_id')}"
    action, drug = symbol(m.get("action")), str(m.get("drug") or "").lower()
    if not drug or action not in ("PRESCRIBED", "STARTED", "STOPPED", "DOSE_CHANGED"):
        return ignore(state, "UNKNOWN_ACTION")
    if seen(state, key):
        return ignore(state, "DUPLICATE")
    s = copy.deepcopy(state)
    ctx = context(m)
    remember(s, key)
    course = s.medications.get(drug)
    dose = number(m.get("dose_mg"))
    if action == "STOPPED":
        if course is not None and course.active:
            course.active, course.stop_day = False, ctx.day
    elif course is None or not course.active:
        s.medications.pop(drug, None)
        s.medications[drug] = MedCourse(
            drug,
            ctx.day,
            dose,
            base_phq9=s.phq9.total if s.phq9 else None,
            base_gad7=s.gad7.total if s.gad7 else None,
            base_severity=s.severity.level,
        )
    elif dose is not None:
        course.dose_mg = dose
    while len(s.medications) > MAX_COURSES:
        oldest = next((d for d, c in s.medications.items() if not c.active), None)
        if oldest is None:
            break
        del s.medications[oldest]
    _gene_drug(s, ctx)
    return finish(s, ctx)


def apply_genetic_profile(state: TwinState, profile: Any) -> tuple[TwinState, TwinOutputs]:
    """Apply a ``GeneticProfile``; keys read: ``phenotypes`` (``gene``, ``phenotype``)."""
    g = as_mapping(profile)
    s = copy.deepcopy(state)
    ctx = context(g)
    for item in g.get("phenotypes") or []:
        p = as_mapping(item)
        gene, phenotype = str(p.get("gene") or "").upper(), symbol(p.get("phenotype"))
        if gene and phenotype:
            s.phenotypes[gene] = phenotype
    s.phenotypes = dict(sorted(s.phenotypes.items()))
    _gene_drug(s, ctx)
    return finish(s, ctx)


def apply_demographics(state: TwinState, demographics: Any) -> tuple[TwinState, TwinOutputs]:
    """Apply ``Demographics`` (``age_band``, ``sex``): selects the biometric prior."""
    d = as_mapping(demographics)
    s = copy.deepcopy(state)
    s.age_band = symbol(d.get("age_band"))
    s.sex = symbol(d.get("sex"))
    return s, TwinOutputs()


def medication_response(state: TwinState) -> dict[str, dict[str, float | int | None]]:
    """Change in PHQ-9, GAD-7 and severity level since each course started.

    A change is ``None`` until a value exists both at the start and after it.
    """
    out: dict[str, dict[str, float | int | None]] = {}
    level = state.severity.level
    for drug, c in state.medications.items():
        phq9 = state.phq9.total if state.phq9 and state.phq9.day > c.start_day else None
        gad7 = state.gad7.total if state.gad7 and state.gad7.day > c.start_day else None
        end = c.stop_day if c.stop_day is not None else state.last_day
        out[drug] = {
            "active": int(c.active),
            "days_on": None if end is None else max(end - c.start_day, 0),
            "phq9_change": None if phq9 is None or c.base_phq9 is None else phq9 - c.base_phq9,
            "gad7_change": None if gad7 is None or c.base_gad7 is None else gad7 - c.base_gad7,
            "severity_change": None if level is None or c.base_severity is None else level - c.base_severity,
        }
    return out
