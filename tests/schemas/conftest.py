"""Factories producing one valid instance of every record type."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from schemas import models as m

T0 = dt.datetime(2026, 3, 14, 9, 26, 53, 589000, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(seconds=2)
PATIENT = "p_" + "0123456789abcdef" * 2


def envelope(**overrides: Any) -> dict[str, Any]:
    base = {
        "event_id": "ev-1",
        "patient_id": PATIENT,
        "event_time": T0,
        "received_time": T1,
        "source": "simulator",
    }
    return {**base, **overrides}


def secret() -> m.EncryptedText:
    return m.EncryptedText(key_id="k1", nonce=b"\x01" * 12, ciphertext=b"\x02" * 40)


def sample_records() -> dict[str, m.Record]:
    """One fully populated instance per record name."""
    env = envelope()
    records: list[m.Record] = [
        m.ClinicalEvent(
            **env,
            kind=m.ClinicalEventKind.OBSERVATION,
            code_system=m.CodeSystem.LOINC,
            code="44261-6",
            display="PHQ-9 total",
            value_number=12.0,
            value_unit="{score}",
            value_code=None,
            status="final",
            narrative=secret(),
        ),
        m.GeneticProfile(
            **env,
            phenotypes=[
                m.PharmacogenomicPhenotype(
                    gene="CYP2D6", phenotype=m.MetabolizerPhenotype.POOR_METABOLIZER, diplotype="*4/*4"
                ),
                m.PharmacogenomicPhenotype(
                    gene="CYP2C19", phenotype=m.MetabolizerPhenotype.NORMAL_METABOLIZER
                ),
            ],
        ),
        m.Demographics(**env, age_band=m.AgeBand.AGE_25_34, sex=m.Sex.FEMALE),
        m.BiometricSample(
            **env,
            metric=m.Metric.SLEEP_STAGE,
            value=30.0,
            unit="s",
            duration_seconds=30,
            sleep_stage=m.SleepStage.REM,
            device_id="dev-1",
            loinc=None,
        ),
        m.SymptomReport(
            **env,
            symptom_type=m.SymptomType.ANXIETY,
            severity=7,
            context="work",
            triggers=["deadline", "commute"],
            notes=secret(),
        ),
        m.AssessmentSubmission(
            **env,
            submission_id="s1",
            instrument=m.Instrument.PHQ9,
            item_responses=[1, 2, 3, 0, 1, 2, 3, 0, 1],
        ),
        m.AssessmentResult(
            **env,
            submission_id="s1",
            instrument=m.Instrument.PHQ9,
            item_responses=[1, 2, 3, 0, 1, 2, 3, 0, 1],
            total=13,
            band=m.Band.MODERATE,
            item9_positive=True,
            loinc_total="44261-6",
        ),
        m.MedicationEvent(
            **env, action=m.MedicationAction.STARTED, rxnorm="36437", drug="sertraline", dose_mg=50.0
        ),
        m.PatientDailyFeatures(
            **env,
            date=dt.date(2026, 3, 13),
            revision=1,
            heart_rate_mean=71.5,
            sleep_efficiency=0.91,
            symptom_severity_by_type={"ANXIETY": 6.0},
            phq9_total=13,
            phq9_change=-2,
            rolling_7d={"sleep_total_minutes_mean7": 402.0},
            normalized={"hrv_rmssd": -1.2},
            completeness=0.8,
            outlier_share=0.01,
            consistency=0.95,
            meets_quality_standards=True,
            late_events=3,
        ),
        m.TwinUpdate(
            **env,
            twin_version=2**40,
            as_of_date=dt.date(2026, 3, 13),
            risk_level=m.RiskLevel.HIGH,
            model_source=m.ModelSource.PERSONAL,
            forecast_severity=6.5,
            forecast_phq9=14.2,
            forecast_mae=1.1,
            anomaly_score=0.7,
            deterioration=True,
            phq9_band=m.Band.MODERATE,
            gad7_band=None,
            active_alerts=["ITEM9_SAFETY"],
        ),
        m.TwinAlert(
            **env,
            alert_type=m.AlertType.ITEM9_SAFETY,
            severity=m.AlertSeverity.CRITICAL,
            trigger_event_id="ev-0",
            evidence={"phq9_item9": "2", "loinc": "44261-6"},
        ),
        m.TwinRestore(
            **env,
            snapshot=3,
            model_version_id="novamind-twin/2:0123456789ab",
            pin=True,
            state=b"NMTW1" + b"\x00" * 40,
            audit_event_id="au-2",
        ),
        m.DeadLetter(
            event_id="dl-1",
            source="workers.validation",
            original_key=PATIENT.encode(),
            original_value=b"\xc3\x01garbage",
            error_class="UnknownFingerprint",
            reason="writer schema fingerprint unknown",
            source_topic="wearable-biometrics",
            source_partition=3,
            source_offset=2**33,
            first_seen_time=T1,
        ),
        m.AuditEvent(
            event_id="au-1",
            event_time=T0,
            actor="connector-ehr",
            action=m.AuditAction.COLLECT,
            patient_id=PATIENT,
            purpose="TREATMENT",
            resource="ehr-clinical-events",
            outcome=m.AuditOutcome.ALLOWED,
            details={"count": "12"},
        ),
        m.PipelineAlert(
            event_id="pa-1",
            event_time=T0,
            component="workers.quality",
            step="window",
            severity=m.AlertSeverity.WARNING,
            message="lag above 10k",
            details={"partition": "4"},
        ),
    ]
    return {r.avro_name: r for r in records}


@pytest.fixture
def records() -> dict[str, m.Record]:
    return sample_records()


@pytest.fixture
def submission_factory() -> Callable[..., m.AssessmentSubmission]:
    def make(instrument: m.Instrument, items: list[int]) -> m.AssessmentSubmission:
        return m.AssessmentSubmission(
            **envelope(), submission_id="s1", instrument=instrument, item_responses=items
        )

    return make
