"""Code tables used by the FHIR mapping (LOINC, SNOMED CT, ICD-10, RxNorm, HGNC)."""

from __future__ import annotations

from schemas import assessments

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10_SYSTEMS = frozenset({
    "http://hl7.org/fhir/sid/icd-10",
    "http://hl7.org/fhir/sid/icd-10-cm",
    "http://hl7.org/fhir/sid/icd-10-de",
})
MR_TYPE = "MR"  # v2-0203 identifier type "Medical record number"

# LOINC vital-sign code -> (BiometricSample metric, accepted source units)
VITALS: dict[str, tuple[str, frozenset[str]]] = {
    "8867-4": ("HEART_RATE", frozenset({"/min", "beats/min", "{beats}/min", "bpm"})),
    "40443-4": ("RESTING_HEART_RATE", frozenset({"/min", "beats/min", "{beats}/min", "bpm"})),
    "80404-7": ("HRV_SDNN", frozenset({"ms"})),
    "55423-8": ("STEPS", frozenset({"steps", "{steps}", "/(24.h)", "{steps}/d", "1"})),
    "41950-7": ("STEPS", frozenset({"steps", "{steps}", "/(24.h)", "{steps}/d", "1"})),
    "93832-4": ("SLEEP_STAGE", frozenset({"h", "min", "s"})),
    "59408-5": ("SPO2", frozenset({"%"})),
    "9279-1": ("RESPIRATORY_RATE", frozenset({"/min", "breaths/min", "{breaths}/min"})),
}
SECONDS_PER_UNIT = {"h": 3600, "min": 60, "s": 1}

PHQ9_PANEL, PHQ9_TOTAL = assessments.PHQ9_PANEL_LOINC, assessments.PHQ9_TOTAL_LOINC
GAD7_PANEL, GAD7_TOTAL = assessments.GAD7_PANEL_LOINC, assessments.GAD7_TOTAL_LOINC
PHQ9_ITEMS = ("44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5",
              "44253-3", "44260-8")
PHQ9_ITEM9 = assessments.PHQ9_ITEM9_LOINC  # answered alone, it is a PHQ9_ITEM9 screen
GAD7_ITEMS = ("69725-0", "68509-9", "69733-4", "69734-2", "69735-9", "69689-8", "69736-7")
PANELS = {PHQ9_PANEL: "PHQ9", GAD7_PANEL: "GAD7"}
TOTALS = {PHQ9_TOTAL: "PHQ9", GAD7_TOTAL: "GAD7"}
ITEMS = {"PHQ9": PHQ9_ITEMS, "GAD7": GAD7_ITEMS}
ITEM_CODES = frozenset(PHQ9_ITEMS) | frozenset(GAD7_ITEMS)
# LOINC answer list LL358-3 (frequency over the last 2 weeks)
ANSWER_SCORES = {"LA6568-5": 0, "LA6569-3": 1, "LA6570-1": 2, "LA6571-9": 3}
# the same answers by their wording, letters only, lower case ("Nearly everyday" included)
ANSWER_TEXTS = {"notatall": 0, "severaldays": 1, "morethanhalfthedays": 2, "nearlyeveryday": 3}

# HL7 Genomics Reporting (checked against github.com/HL7/genomics-reporting, input/fsh):
# genotype "Genotype display name" 84413-4, haplotype "Haplotype Name" 84414-2, gene studied
# 48018-6, therapeutic implications coded with the IG's TBD code "therapeutic-implication"
# (older IG versions: 53040-2 effect on drug metabolism, 51961-1 effect on drug efficacy,
# "predicted-therapeutic-implication"), genomic report 51969-4.
PGX_EFFECT_ON_METABOLISM = "53040-2"  # Genetic variation's effect on drug metabolism
PGX_EFFECT_ON_EFFICACY = "51961-1"
PGX_CLINICAL_SIGNIFICANCE = "53037-8"
GENE_STUDIED = "48018-6"
GENOTYPE_DISPLAY = "84413-4"
HAPLOTYPE_NAME = "84414-2"
GENOMIC_REPORT = "51969-4"
THERAPEUTIC_IMPLICATION = "therapeutic-implication"
PREDICTED_IMPLICATION = "predicted-therapeutic-implication"
IMPLICATION_CODES = frozenset({THERAPEUTIC_IMPLICATION, PGX_EFFECT_ON_METABOLISM,
                               PGX_CLINICAL_SIGNIFICANCE})
PHENOTYPE_COMPONENTS = frozenset({THERAPEUTIC_IMPLICATION, PREDICTED_IMPLICATION,
                                  PGX_EFFECT_ON_METABOLISM, PGX_EFFECT_ON_EFFICACY})
GENOMIC_CODES = frozenset({PGX_EFFECT_ON_METABOLISM, PGX_CLINICAL_SIGNIFICANCE, GENOTYPE_DISPLAY,
                           HAPLOTYPE_NAME, THERAPEUTIC_IMPLICATION})
# IG value set genetic-therapeutic-implications-vs: metaboliser answers
METABOLIZER_ANSWERS = {
    "LA10315-2": "ULTRARAPID_METABOLIZER",
    "LA25390-8": "RAPID_METABOLIZER",
    "LA25391-6": "NORMAL_METABOLIZER",
    "LA10317-8": "INTERMEDIATE_METABOLIZER",
    "LA9657-3": "POOR_METABOLIZER",
}
HGNC_SYMBOLS = {  # a few pharmacogenes relevant to psychiatry, by HGNC id
    "HGNC:2625": "CYP2D6",
    "HGNC:2621": "CYP2C19",
    "HGNC:2623": "CYP2C9",
    "HGNC:2596": "CYP1A2",
    "HGNC:2637": "CYP3A4",
    "HGNC:2615": "CYP2B6",
    "HGNC:23663": "VKORC1",
}
# ordered: the first substring found in the lower-cased phenotype text wins
PHENOTYPE_WORDS = (
    ("ultrarapid", "ULTRARAPID_METABOLIZER"),
    ("ultra-rapid", "ULTRARAPID_METABOLIZER"),
    ("ultra rapid", "ULTRARAPID_METABOLIZER"),
    ("rapid", "RAPID_METABOLIZER"),
    ("poor", "POOR_METABOLIZER"),
    ("intermediate", "INTERMEDIATE_METABOLIZER"),
    ("normal", "NORMAL_METABOLIZER"),
    ("extensive", "NORMAL_METABOLIZER"),
    ("indeterminate", "INDETERMINATE"),
)

OBSERVATION_CODES = (frozenset(VITALS) | frozenset(PANELS) | frozenset(TOTALS) | ITEM_CODES
                     | GENOMIC_CODES)

AGE_BANDS = ((17, "AGE_0_17"), (24, "AGE_18_24"), (34, "AGE_25_34"), (44, "AGE_35_44"),
             (54, "AGE_45_54"), (64, "AGE_55_64"), (74, "AGE_65_74"))
SEX = {"female": "FEMALE", "male": "MALE", "other": "OTHER"}

# MedicationRequest / MedicationStatement status -> MedicationEvent.action (None: not emitted)
REQUEST_ACTIONS = {"active": "PRESCRIBED", "completed": "PRESCRIBED", "on-hold": "PRESCRIBED",
                   "draft": None, "stopped": "STOPPED", "cancelled": "STOPPED",
                   "entered-in-error": None, "unknown": "UNKNOWN"}
STATEMENT_ACTIONS = {"active": "STARTED", "completed": "STOPPED", "stopped": "STOPPED",
                     "intended": "PRESCRIBED", "on-hold": "STOPPED", "not-taken": None,
                     "entered-in-error": None, "unknown": "UNKNOWN"}
