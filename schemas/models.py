"""Pydantic v2 domain models mirroring the Avro records one to one.

Hand-written for static typing; ``tests/schemas/test_models_match_avsc.py`` walks every
record and proves names, order, types, optionality, enum symbols and defaults agree with the
.avsc files, so the two cannot drift. Models are frozen; datetimes are UTC at millisecond
precision (what ``timestamp-millis`` carries), so a model survives the wire unchanged.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
PSEUDONYM_PATTERN = r"^p_[0-9a-f]{32}$"


def _utc_millis(value: dt.datetime) -> dt.datetime:
    value = value.astimezone(dt.UTC)
    return value.replace(microsecond=value.microsecond - value.microsecond % 1000)


Int = Annotated[int, Field(ge=INT32_MIN, le=INT32_MAX)]
Long = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_utc_millis)]
Pseudonym = Annotated[str, Field(pattern=PSEUDONYM_PATTERN)]
ItemResponse = Annotated[int, Field(ge=0, le=3)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


# ---------------------------------------------------------------- enums (symbols as in .avsc)
class ClinicalEventKind(StrEnum):
    OBSERVATION = "OBSERVATION"
    CONDITION = "CONDITION"
    MEDICATION = "MEDICATION"
    PROCEDURE = "PROCEDURE"
    ENCOUNTER = "ENCOUNTER"
    UNKNOWN = "UNKNOWN"


class CodeSystem(StrEnum):
    LOINC = "LOINC"
    SNOMED_CT = "SNOMED_CT"
    ICD_10 = "ICD_10"
    RXNORM = "RXNORM"
    OTHER = "OTHER"
    UNKNOWN = "UNKNOWN"


class MetabolizerPhenotype(StrEnum):
    POOR_METABOLIZER = "POOR_METABOLIZER"
    INTERMEDIATE_METABOLIZER = "INTERMEDIATE_METABOLIZER"
    NORMAL_METABOLIZER = "NORMAL_METABOLIZER"
    RAPID_METABOLIZER = "RAPID_METABOLIZER"
    ULTRARAPID_METABOLIZER = "ULTRARAPID_METABOLIZER"
    INDETERMINATE = "INDETERMINATE"
    UNKNOWN = "UNKNOWN"


class AgeBand(StrEnum):
    AGE_0_17 = "AGE_0_17"
    AGE_18_24 = "AGE_18_24"
    AGE_25_34 = "AGE_25_34"
    AGE_35_44 = "AGE_35_44"
    AGE_45_54 = "AGE_45_54"
    AGE_55_64 = "AGE_55_64"
    AGE_65_74 = "AGE_65_74"
    AGE_75_PLUS = "AGE_75_PLUS"
    UNKNOWN = "UNKNOWN"


class Sex(StrEnum):
    FEMALE = "FEMALE"
    MALE = "MALE"
    OTHER = "OTHER"
    UNKNOWN = "UNKNOWN"


class Metric(StrEnum):
    HEART_RATE = "HEART_RATE"
    RESTING_HEART_RATE = "RESTING_HEART_RATE"
    HRV_RMSSD = "HRV_RMSSD"
    HRV_SDNN = "HRV_SDNN"
    STEPS = "STEPS"
    SLEEP_STAGE = "SLEEP_STAGE"
    SPO2 = "SPO2"
    RESPIRATORY_RATE = "RESPIRATORY_RATE"
    UNKNOWN = "UNKNOWN"


class SleepStage(StrEnum):
    AWAKE = "AWAKE"
    LIGHT = "LIGHT"
    DEEP = "DEEP"
    REM = "REM"
    ASLEEP = "ASLEEP"
    UNKNOWN = "UNKNOWN"


class SymptomType(StrEnum):
    DEPRESSED_MOOD = "DEPRESSED_MOOD"
    ANXIETY = "ANXIETY"
    IRRITABILITY = "IRRITABILITY"
    FATIGUE = "FATIGUE"
    INSOMNIA = "INSOMNIA"
    ANHEDONIA = "ANHEDONIA"
    POOR_CONCENTRATION = "POOR_CONCENTRATION"
    PANIC = "PANIC"
    OTHER = "OTHER"
    UNKNOWN = "UNKNOWN"


def known_symbols(enum: type[StrEnum]) -> tuple[str, ...]:
    """The symbols a producer may write: all but ``UNKNOWN``, the reader's default for new ones."""
    return tuple(member.value for member in enum if member.value != "UNKNOWN")


# What a symptom report may name (the intake, validation, the dataset export and the simulator).
REPORTED_SYMPTOM_TYPES: tuple[str, ...] = known_symbols(SymptomType)


class Instrument(StrEnum):
    PHQ9 = "PHQ9"
    GAD7 = "GAD7"
    PHQ9_ITEM9 = "PHQ9_ITEM9"  # PHQ-9 item 9 answered on its own (a single-item screen), v2
    UNKNOWN = "UNKNOWN"


class Band(StrEnum):
    MINIMAL = "MINIMAL"
    MILD = "MILD"
    MODERATE = "MODERATE"
    MODERATELY_SEVERE = "MODERATELY_SEVERE"
    SEVERE = "SEVERE"
    UNKNOWN = "UNKNOWN"


class MedicationAction(StrEnum):
    PRESCRIBED = "PRESCRIBED"
    STARTED = "STARTED"
    STOPPED = "STOPPED"
    DOSE_CHANGED = "DOSE_CHANGED"
    UNKNOWN = "UNKNOWN"


class RiskLevel(StrEnum):
    LOW = "LOW"
    MODERATE = "MODERATE"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"
    UNKNOWN = "UNKNOWN"


class ModelSource(StrEnum):
    POPULATION_PRIOR = "POPULATION_PRIOR"
    PERSONAL = "PERSONAL"
    UNKNOWN = "UNKNOWN"


class AlertType(StrEnum):
    ITEM9_SAFETY = "ITEM9_SAFETY"
    SEVERE_BAND = "SEVERE_BAND"
    SUSTAINED_DETERIORATION = "SUSTAINED_DETERIORATION"
    BIOMETRIC_ANOMALY = "BIOMETRIC_ANOMALY"
    GENE_DRUG_INTERACTION = "GENE_DRUG_INTERACTION"
    UNKNOWN = "UNKNOWN"


class AlertSeverity(StrEnum):
    INFO = "INFO"
    WARNING = "WARNING"
    CRITICAL = "CRITICAL"
    UNKNOWN = "UNKNOWN"


class AuditAction(StrEnum):
    COLLECT = "COLLECT"
    ACCESS = "ACCESS"
    EXPORT = "EXPORT"
    REIDENTIFY = "REIDENTIFY"
    AMEND = "AMEND"
    UNKNOWN = "UNKNOWN"


class AuditOutcome(StrEnum):
    ALLOWED = "ALLOWED"
    DENIED = "DENIED"
    UNKNOWN = "UNKNOWN"


# ---------------------------------------------------------------- bases and nested records
class AvroModel(BaseModel):
    """Base of every model: frozen, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Record(AvroModel):
    """A top-level Avro record; ``avro_name`` is its record name."""

    avro_name: ClassVar[str]

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls.avro_name = cls.__name__


class PatientEvent(Record):
    """Envelope fields, first in every patient record."""

    event_id: str
    patient_id: Pseudonym
    event_time: UtcDatetime
    received_time: UtcDatetime
    source: str
    schema_version: Int = 1


class EncryptedText(AvroModel):
    key_id: str
    nonce: bytes
    ciphertext: bytes


class PharmacogenomicPhenotype(AvroModel):
    gene: str
    phenotype: MetabolizerPhenotype
    diplotype: str | None = None


# ---------------------------------------------------------------- patient records
class ClinicalEvent(PatientEvent):
    kind: ClinicalEventKind
    code_system: CodeSystem
    code: str
    display: str | None = None
    value_number: float | None = None
    value_unit: str | None = None
    value_code: str | None = None
    status: str | None = None
    narrative: EncryptedText | None = None


class GeneticProfile(PatientEvent):
    phenotypes: list[PharmacogenomicPhenotype] = Field(default_factory=list)


class Demographics(PatientEvent):
    age_band: AgeBand
    sex: Sex


class BiometricSample(PatientEvent):
    metric: Metric
    value: float
    unit: str
    duration_seconds: Annotated[int, Field(ge=0, le=INT32_MAX)] | None = None
    sleep_stage: SleepStage | None = None
    device_id: str
    loinc: str | None = None


class SymptomReport(PatientEvent):
    symptom_type: SymptomType
    severity: Annotated[int, Field(ge=0, le=10)]
    context: str | None = None
    triggers: list[str] = Field(default_factory=list)
    notes: EncryptedText | None = None


class AssessmentSubmission(PatientEvent):
    schema_version: Int = 2
    submission_id: str
    instrument: Instrument
    item_responses: list[ItemResponse]


class AssessmentResult(PatientEvent):
    schema_version: Int = 2
    submission_id: str
    instrument: Instrument
    item_responses: list[ItemResponse]
    total: Annotated[int, Field(ge=0, le=27)]
    band: Band
    item9_positive: bool
    loinc_total: str | None = None


class MedicationEvent(PatientEvent):
    action: MedicationAction
    rxnorm: str | None = None
    drug: str
    dose_mg: Annotated[float, Field(ge=0.0)] | None = None


class PatientDailyFeatures(PatientEvent):
    date: dt.date
    revision: Annotated[int, Field(ge=0, le=INT32_MAX)] = 0
    missing: bool = False
    heart_rate_mean: float | None = None
    heart_rate_min: float | None = None
    heart_rate_max: float | None = None
    heart_rate_std: float | None = None
    resting_heart_rate: float | None = None
    hrv_rmssd: float | None = None
    hrv_sdnn: float | None = None
    steps_total: float | None = None
    spo2_mean: float | None = None
    respiratory_rate_mean: float | None = None
    sleep_total_minutes: float | None = None
    sleep_deep_minutes: float | None = None
    sleep_rem_minutes: float | None = None
    sleep_light_minutes: float | None = None
    sleep_awake_minutes: float | None = None
    sleep_efficiency: Fraction | None = None
    symptom_severity_mean: Annotated[float, Field(ge=0.0, le=10.0)] | None = None
    symptom_severity_by_type: dict[str, float] = Field(default_factory=dict)
    phq9_total: Annotated[int, Field(ge=0, le=27)] | None = None
    phq9_change: Annotated[int, Field(ge=-27, le=27)] | None = None
    gad7_total: Annotated[int, Field(ge=0, le=21)] | None = None
    gad7_change: Annotated[int, Field(ge=-21, le=21)] | None = None
    rolling_7d: dict[str, float] = Field(default_factory=dict)
    normalized: dict[str, float] = Field(default_factory=dict)
    completeness: Fraction
    outlier_share: Fraction
    consistency: Fraction
    meets_quality_standards: bool
    late_events: Annotated[int, Field(ge=0, le=INT32_MAX)] = 0


class TwinUpdate(PatientEvent):
    schema_version: Int = 2
    twin_version: Annotated[int, Field(ge=0, le=INT64_MAX)]
    as_of_date: dt.date
    risk_level: RiskLevel
    model_source: ModelSource
    forecast_severity: float | None = None
    forecast_severity_lo: float | None = None
    forecast_severity_hi: float | None = None
    forecast_phq9: float | None = None
    forecast_mae: Annotated[float, Field(ge=0.0)] | None = None
    anomaly_score: float | None = None
    deterioration: bool
    phq9_band: Band | None = None
    gad7_band: Band | None = None
    active_alerts: list[str] = Field(default_factory=list)


class TwinAlert(PatientEvent):
    alert_type: AlertType
    severity: AlertSeverity
    trigger_event_id: str
    evidence: dict[str, str] = Field(default_factory=dict)


class TwinRestore(PatientEvent):
    snapshot: Annotated[int, Field(ge=0, le=INT32_MAX)]
    model_version_id: str
    pin: bool = False
    state: bytes
    audit_event_id: str


# ---------------------------------------------------------------- pipeline records
class DeadLetter(Record):
    event_id: str
    source: str
    schema_version: Int = 1
    original_key: bytes | None = None
    original_value: bytes
    error_class: str
    reason: str
    source_topic: str
    source_partition: Annotated[int, Field(ge=0, le=INT32_MAX)]
    source_offset: Annotated[int, Field(ge=0, le=INT64_MAX)]
    first_seen_time: UtcDatetime


class AuditEvent(Record):
    event_id: str
    event_time: UtcDatetime
    schema_version: Int = 2
    actor: str
    action: AuditAction
    patient_id: Pseudonym | None = None
    purpose: str
    resource: str
    outcome: AuditOutcome
    details: dict[str, str] = Field(default_factory=dict)


class PipelineAlert(Record):
    event_id: str
    event_time: UtcDatetime
    schema_version: Int = 2
    component: str
    step: str
    severity: AlertSeverity
    message: str
    details: dict[str, str] = Field(default_factory=dict)


MODELS: dict[str, type[Record]] = {
    cls.__name__: cls
    for cls in (
        ClinicalEvent,
        GeneticProfile,
        Demographics,
        BiometricSample,
        SymptomReport,
        AssessmentSubmission,
        AssessmentResult,
        MedicationEvent,
        PatientDailyFeatures,
        TwinUpdate,
        TwinAlert,
        TwinRestore,
        DeadLetter,
        AuditEvent,
        PipelineAlert,
    )
}
"""Model class by record name, one per top-level Avro record."""
