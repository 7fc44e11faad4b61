"""Plan an export (pure) and write it (Avro container files + manifest).

:func:`plan_export` takes daily-feature records, twin attributes, the parameters, the
re-keying key and a random source, and returns the rows of each split; the key lives only for
that call. :func:`write_export` writes ``train.avro``, ``validation.avro``, ``test.avro``
(fastavro, deflate) and ``manifest.json`` into an empty directory.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastavro import parse_schema, writer

from novamind.app.datasets import deidentify, quality, split
from novamind.app.datasets.exceptions import BadExportParameters, OutputExists
from novamind.app.datasets.manifest import build_manifest, file_entry, write_manifest
from novamind.app.datasets.quality import QualityReport
from novamind.app.datasets.rows import Attributes, PatientDay, latest_revisions, to_row
from novamind.app.datasets.schema import SCHEMA_VERSION, training_schema

DEFAULT_MAX_SHIFT_DAYS = 365


@dataclass(frozen=True, kw_only=True)
class ExportParameters:
    """How to split, shift and gate. Explicit boundaries win over shares."""

    train_share: float = 0.7
    validation_share: float = 0.15
    validation_from: dt.date | None = None
    test_from: dt.date | None = None
    gap_days: int = split.DEFAULT_GAP_DAYS
    max_shift_days: int = DEFAULT_MAX_SHIFT_DAYS
    shift_whole_weeks: bool = False
    min_passing_share: float = 1.0

    def __post_init__(self) -> None:
        if (self.validation_from is None) != (self.test_from is None):
            raise BadExportParameters("give both --validation-from and --test-from, or neither")
        quality.check_share(self.min_passing_share)
        if self.gap_days < 0:
            raise BadExportParameters(f"--gap-days must be 0 or more, got {self.gap_days}")
        if self.max_shift_days < (7 if self.shift_whole_weeks else 1):
            raise BadExportParameters(
                f"--max-shift-days must allow a non-zero shift, got {self.max_shift_days}"
            )

    def public(self) -> dict[str, Any]:
        """The parameters for the manifest. Explicit boundaries are real dates, which would let
        a reader undo the shifts, so they are withheld there (the audit event keeps them)."""
        explicit = self.validation_from is not None
        return {
            "boundaries": "explicit dates (withheld)" if explicit else "shares of the date span",
            "train_share": None if explicit else self.train_share,
            "validation_share": None if explicit else self.validation_share,
            "gap_days": self.gap_days,
            "max_shift_days": self.max_shift_days,
            "shift_whole_weeks": self.shift_whole_weeks,
            "min_passing_share": self.min_passing_share,
        }


@dataclass(frozen=True)
class ExportPlan:
    """Rows per split (sorted by subject and shifted date) and what it took to get them."""

    rows: dict[str, list[dict[str, Any]]]
    quality: QualityReport
    split_plan: split.SplitPlan
    embargoed: int
    records_read: int
    subjects_without_twin: int
    subjects: dict[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, Any]:
        return {
            "records_read": self.records_read,
            "subjects": len({r["subject_id"] for rows in self.rows.values() for r in rows}),
            "subjects_without_twin": self.subjects_without_twin,
            "rows": {name: len(rows) for name, rows in self.rows.items()},
            "days_embargoed": self.embargoed,
        }


def plan_export(
    features: Iterable[Mapping[str, Any]],
    twins: Mapping[str, Attributes],
    parameters: ExportParameters,
    *,
    key: bytes,
    rng: random.Random,
) -> ExportPlan:
    """Gate, split, re-key, shift and whitelist. Raises the errors of :mod:`quality`/:mod:`split`."""
    records = list(features)
    days = latest_revisions(records)
    report = quality.assess(days)
    quality.gate(report, min_passing_share=parameters.min_passing_share)
    kept = {k: r for k, r in days.items() if quality.passes(r)}
    plan = _split_plan(kept, parameters)
    assigned, embargoed = split.assign(kept, plan)
    patients = {p for rows in assigned.values() for p, _ in rows}
    shifts = deidentify.draw_shifts(
        patients, max_days=parameters.max_shift_days, rng=rng, whole_weeks=parameters.shift_whole_weeks
    )
    subject = {p: deidentify.rekey(p, key) for p in patients}
    rows: dict[str, list[dict[str, Any]]] = {}
    for name, members in assigned.items():
        built = [
            to_row(
                kept[(p, day)],
                subject_id=subject[p],
                date=deidentify.shift(day, shifts[p]),
                attributes=twins.get(p, Attributes()),
            )
            for p, day in members
        ]
        rows[name] = sorted(built, key=lambda r: (r["subject_id"], r["date"]))
    return ExportPlan(
        rows=rows,
        quality=report,
        split_plan=plan,
        embargoed=embargoed,
        records_read=len(records),
        subjects_without_twin=len(patients - twins.keys()),
        subjects={name: len({r["subject_id"] for r in built}) for name, built in rows.items()},
    )


def _split_plan(kept: Mapping[PatientDay, Any], parameters: ExportParameters) -> split.SplitPlan:
    if parameters.validation_from is not None and parameters.test_from is not None:
        return split.SplitPlan(
            validation_from=parameters.validation_from,
            test_from=parameters.test_from,
            gap_days=parameters.gap_days,
        )
    dates = [day for _, day in kept]
    return split.plan_by_shares(
        min(dates),
        max(dates),
        train_share=parameters.train_share,
        validation_share=parameters.validation_share,
        gap_days=parameters.gap_days,
    )


DEIDENTIFICATION = {
    "subject_id": "HMAC-SHA256 of the pseudonym under a random per-export key that is not stored",
    "dates": "shifted per subject by a random non-zero whole number of days (see parameters)",
    "age": "bands only (AgeBand)",
    "free_text": "none",
    "fields": "whitelist of the declared schema; identifiers, timestamps and sources dropped",
}


def write_export(
    plan: ExportPlan,
    directory: Path,
    *,
    export_id: str,
    created_at: dt.datetime,
    parameters: ExportParameters,
) -> dict[str, Any]:
    """Write the split files and the manifest into ``directory`` (created; must not exist)."""
    try:
        directory.mkdir(parents=True)
    except FileExistsError as exc:
        raise OutputExists(f"{directory} already exists; exports never overwrite") from exc
    schema = training_schema()
    parsed = parse_schema(schema)
    metadata = {"novamind.export_id": export_id, "novamind.schema_version": str(SCHEMA_VERSION)}
    files = {}
    for name in split.SPLITS:
        path = directory / f"{name}.avro"
        with path.open("wb") as handle:
            writer(
                handle,
                parsed,
                plan.rows[name],
                codec="deflate",
                metadata={**metadata, "novamind.split": name},
            )
        files[name] = file_entry(path, rows=len(plan.rows[name]), subjects=plan.subjects[name])
    manifest = build_manifest(
        export_id=export_id,
        created_at=created_at.astimezone(dt.UTC).isoformat(),
        schema=schema,
        files=files,
        quality=plan.quality.summary(min_passing_share=parameters.min_passing_share),
        parameters=parameters.public(),
        counts=plan.counts(),
        deidentification=DEIDENTIFICATION,
    )
    write_manifest(directory, manifest)
    return manifest
