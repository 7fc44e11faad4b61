"""Re-keying is stable within an export and unlinkable across exports; shifts are consistent."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest

from novamind.app.datasets.deidentify import draw_shifts, new_export_key, rekey
from novamind.app.datasets.exceptions import BadExportParameters
from novamind.app.datasets.export import ExportParameters, ExportPlan, plan_export
from tests.novamind.app.datasets.factories import cohort, pseudonym

PATIENTS = 12
PARAMS = ExportParameters(train_share=0.6, validation_share=0.2, gap_days=7)


def _export(key: bytes, seed: int, params: ExportParameters = PARAMS) -> ExportPlan:
    return plan_export(cohort(PATIENTS, 60), {}, params, key=key, rng=random.Random(seed))


def test_subject_ids_are_stable_within_an_export_and_hide_the_pseudonym() -> None:
    key = new_export_key()
    ids = {pseudonym(n): rekey(pseudonym(n), key) for n in range(PATIENTS)}
    assert ids == {p: rekey(p, key) for p in ids}
    assert len(set(ids.values())) == PATIENTS
    for p, subject in ids.items():
        assert subject.startswith("s_") and len(subject) == 34
        assert p[2:] not in subject


def test_two_exports_of_the_same_patients_share_no_subject_id() -> None:
    first, second = _export(new_export_key(), 1), _export(new_export_key(), 2)
    ids = [{r["subject_id"] for rows in plan.rows.values() for r in rows} for plan in (first, second)]
    assert len(ids[0]) == len(ids[1]) == PATIENTS
    assert ids[0].isdisjoint(ids[1])
    # Nor do their date shifts line the subjects up: per-export shifts differ.
    same_key = new_export_key()
    again = [_export(same_key, seed) for seed in (3, 4)]
    dates = [{(r["subject_id"], r["date"]) for r in plan.rows["train"]} for plan in again]
    assert dates[0] != dates[1]


def test_keys_are_fresh_and_short_keys_are_refused() -> None:
    assert len({new_export_key() for _ in range(5)}) == 5
    assert len(new_export_key()) == 32
    with pytest.raises(BadExportParameters):
        rekey(pseudonym(0), b"short")


def test_each_patient_has_one_nonzero_shift_within_the_bound() -> None:
    key = new_export_key()
    plan = _export(key, 7, ExportParameters(train_share=0.6, validation_share=0.2, max_shift_days=30))
    real_days = defaultdict(list)
    per_patient = []
    for record in cohort(PATIENTS, 60):
        if plan.split_plan.split_of(record["date"]) is not None:
            real_days[record["patient_id"]].append(record["date"])
    for patient, days in real_days.items():
        subject = rekey(patient, key)
        shifted = sorted(r["date"] for rows in plan.rows.values() for r in rows if r["subject_id"] == subject)
        offsets = {(s - d).days for s, d in zip(shifted, sorted(days), strict=True)}
        assert len(offsets) == 1, offsets  # one shift per patient, across every split
        (offset,) = offsets
        assert offset != 0 and abs(offset) <= 30
        per_patient.append(offset)
    assert len(per_patient) == PATIENTS and len(set(per_patient)) > 1  # drawn per patient


def test_whole_week_shifts_keep_the_weekday() -> None:
    shifts = draw_shifts(
        [pseudonym(n) for n in range(50)], max_days=70, rng=random.Random(5), whole_weeks=True
    )
    assert all(s % 7 == 0 and s != 0 and abs(s) <= 70 for s in shifts.values())
    assert len(set(shifts.values())) > 5
    with pytest.raises(BadExportParameters):
        draw_shifts(["p_x"], max_days=6, rng=random.Random(1), whole_weeks=True)
