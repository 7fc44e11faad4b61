"""Rows carry only the whitelist; files read back; the manifest's hashes verify them."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import pytest
from fastavro import reader

from novamind.app.datasets.deidentify import new_export_key
from novamind.app.datasets.exceptions import OutputExists, QualityGateFailed
from novamind.app.datasets.export import ExportParameters, ExportPlan, plan_export, write_export
from novamind.app.datasets.manifest import MANIFEST_NAME, verify
from novamind.app.datasets.rows import Attributes, latest_revisions, to_row
from novamind.app.datasets.schema import (
    MEASURES,
    field_names,
    training_schema,
)
from schemas.catalog import catalog
from tests.novamind.app.datasets.factories import START, cohort, feature_record, pseudonym

NOW = dt.datetime(2026, 4, 1, 12, tzinfo=dt.UTC)
PARAMS = ExportParameters(train_share=0.6, validation_share=0.2, gap_days=7, min_passing_share=0.9)


def _written(tmp_path: Path, key: bytes | None = None) -> tuple[Path, dict[str, Any], ExportPlan]:
    records = cohort(4, 40, failing=[(1, 5), (3, 30)])
    twins = {pseudonym(0): Attributes.of("AGE_25_34", "FEMALE"), pseudonym(1): Attributes.of("AGE_99", None)}
    plan = plan_export(records, twins, PARAMS, key=key or new_export_key(), rng=random.Random(3))
    out = tmp_path / "export"
    manifest = write_export(plan, out, export_id="e1", created_at=NOW, parameters=PARAMS)
    return out, manifest, plan


def test_a_row_holds_exactly_the_declared_fields() -> None:
    record = feature_record(
        pseudonym(0),
        START,
        symptom_severity_by_type={"ANXIETY": 3.0, "NEW_SYMPTOM": 9.0},
        rolling_7d={"days_observed7": 5.0, "steps_total_mean7": 7000.0, "free_key": 1.0},
        normalized={"steps_total": -0.5, "unreviewed": 2.0},
        phq9_total=11,
    )
    row = to_row(record, subject_id="s_x", date=START, attributes=Attributes())
    assert tuple(row) == field_names()
    assert (row["symptom_anxiety_severity"], row["steps_total_mean7"], row["steps_total_z"]) == (
        3.0,
        7000.0,
        -0.5,
    )
    assert row["phq9_total"] == 11 and isinstance(row["phq9_total"], int)
    assert (row["age_band"], row["sex"]) == ("UNKNOWN", "UNKNOWN")
    for dropped in (
        "patient_id",
        "event_id",
        "event_time",
        "received_time",
        "source",
        "revision",
        "late_events",
    ):
        assert dropped not in row
    assert 9.0 not in row.values() and 2.0 not in row.values()  # unknown map keys stay out


def test_every_schema_field_has_a_doc_and_covers_the_features_contract() -> None:
    schema = training_schema()
    assert schema["doc"] and all(f.get("doc") for f in schema["fields"])
    assert all(
        f["type"].get("doc")
        for f in schema["fields"]
        if isinstance(f["type"], dict) and "symbols" in f["type"]
    )
    source = {f["name"] for f in catalog().get("PatientDailyFeatures").schema["fields"]}
    assert {name for name, _, _ in MEASURES} <= source


def test_files_read_back_and_the_manifest_verifies_them(tmp_path: Path) -> None:
    key = new_export_key()
    out, manifest, plan = _written(tmp_path, key)
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.json",
        "test.avro",
        "train.avro",
        "validation.avro",
    ]
    assert verify(out) == []
    stored = json.loads((out / MANIFEST_NAME).read_text())
    assert stored == manifest
    assert stored["schema"] == training_schema()
    for name in ("train", "validation", "test"):
        with (out / f"{name}.avro").open("rb") as handle:
            avro = reader(handle)
            rows = list(avro)
            assert avro.metadata["novamind.split"] == name and avro.metadata["novamind.export_id"] == "e1"
        assert rows == plan.rows[name]
        assert stored["files"][name]["rows"] == len(rows)
    assert stored["quality"]["days_failing_dropped"] == 2
    assert stored["counts"]["subjects"] == 4 and stored["counts"]["subjects_without_twin"] == 2
    ages = {r["age_band"] for rows in plan.rows.values() for r in rows}
    assert ages == {"AGE_25_34", "UNKNOWN"}
    text = (out / MANIFEST_NAME).read_text()
    assert key.hex() not in text and pseudonym(0) not in text and str(START) not in text
    for path in out.iterdir():
        # Avro blocks are deflate-compressed: look at the decoded content as well as the bytes.
        blob = path.read_bytes() + _decoded(path)
        assert key not in blob and key.hex().encode() not in blob
        assert all(pseudonym(n).encode() not in blob for n in range(4))


def _decoded(path: Path) -> bytes:
    if path.suffix != ".avro":
        return b""
    with path.open("rb") as handle:
        avro = reader(handle)
        return json.dumps([avro.metadata, *avro], default=str).encode()


def test_a_changed_byte_is_caught(tmp_path: Path) -> None:
    out, _, _ = _written(tmp_path)
    path = out / "validation.avro"
    blob = bytearray(path.read_bytes())
    blob[-20] ^= 0xFF
    path.write_bytes(bytes(blob))
    problems = verify(out)
    assert len(problems) == 1 and problems[0].startswith("validation: validation.avro SHA-256")
    (out / "test.avro").unlink()
    assert "test: test.avro is missing" in verify(out)


def test_explicit_boundaries_are_withheld_from_the_manifest(tmp_path: Path) -> None:
    params = ExportParameters(
        validation_from=START + dt.timedelta(days=20), test_from=START + dt.timedelta(days=30)
    )
    plan = plan_export(cohort(2, 40), {}, params, key=new_export_key(), rng=random.Random(1))
    manifest = write_export(plan, tmp_path / "x", export_id="e2", created_at=NOW, parameters=params)
    assert manifest["parameters"]["boundaries"] == "explicit dates (withheld)"
    assert "2026-01-25" not in json.dumps(manifest) and "2026-02-04" not in json.dumps(manifest)
    assert [manifest["files"][s]["rows"] for s in ("train", "validation", "test")] == [40, 6, 6]


def test_existing_output_and_gate_refusals_stop_the_export(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    plan = plan_export(cohort(1, 40), {}, PARAMS, key=new_export_key(), rng=random.Random(1))
    with pytest.raises(OutputExists):
        write_export(plan, tmp_path / "taken", export_id="e3", created_at=NOW, parameters=PARAMS)
    strict = ExportParameters(train_share=0.6, validation_share=0.2)
    with pytest.raises(QualityGateFailed, match=pseudonym(0)):
        plan_export(cohort(1, 40, failing=[(0, 3)]), {}, strict, key=new_export_key(), rng=random.Random(1))


def test_only_the_last_revision_of_a_day_is_exported() -> None:
    p = pseudonym(0)
    records = [*cohort(1, 40), feature_record(p, START, revision=3, heart_rate_mean=99.0)]
    assert latest_revisions(records)[(p, START)]["heart_rate_mean"] == 99.0
    plan = plan_export(records, {}, PARAMS, key=new_export_key(), rng=random.Random(1))
    assert sum(map(len, plan.rows.values())) + plan.embargoed == 40
    first = min(plan.rows["train"], key=lambda r: r["date"])
    assert first["heart_rate_mean"] == 99.0
