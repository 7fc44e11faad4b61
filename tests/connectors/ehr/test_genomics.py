"""Genomics-reporting IG results -> GeneticProfile; CPIC diplotype -> phenotype."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime

import pytest

from connectors.ehr import FhirMapper, cpic
from connectors.ehr.reader import RawResource
from connectors.pseudonyms import pseudonymize
from schemas.codec import AvroCodec
from tests.connectors.conftest import FIXTURES, PSEUDONYM_KEY

IG = FIXTURES / "fhir/genomics-reporting"


def run(path):
    m = FhirMapper(key=PSEUDONYM_KEY, as_of=date(2024, 6, 1), received_time=datetime(2024, 6, 1, tzinfo=UTC))
    out = list(m.map_path(path) if not isinstance(path, list) else m.map_resources(path))
    assert m.summary.balanced
    return m, [(pid, rec) for pid, t, rec in out if t == "GeneticProfile"]


def test_emerge_genotypes_and_implications_without_a_report():
    m, [(pid, profile)] = run(IG / "emerge-pgx.json")
    assert pid == pseudonymize("http://hospital.example.org", "m123", key=PSEUDONYM_KEY)
    assert profile["phenotypes"] == [
        {"gene": "CYP2C19", "phenotype": "POOR_METABOLIZER", "diplotype": "*2/*2"},
        {"gene": "CYP2C9", "phenotype": "UNKNOWN", "diplotype": "*1/*1"},  # TxImp06 names two genes
        {"gene": "CYP2D6", "phenotype": "INTERMEDIATE_METABOLIZER", "diplotype": "*1/*7"},  # AS 0 + 1
        {"gene": "VKORC1", "phenotype": "UNKNOWN", "diplotype": "rs9923231 C/T"},
    ]
    assert profile["event_time"] == datetime(2019, 4, 1, tzinfo=UTC)
    assert m.summary.mapped == 11 and m.summary.rejected == []
    AvroCodec().encode_dict("GeneticProfile", profile)  # the contract carries it


def test_report_grouped_result_with_haplotypes_and_variants():
    m, [(pid, profile)] = run(IG / "bundle-pgxexample.json")
    assert pid == pseudonymize("fhir:ehr", "Patient/ExamplePatient", key=PSEUDONYM_KEY)  # no identifier
    # the lab's stated phenotype; CYP2C9 is not looked up in CPIC tables here
    assert profile["phenotypes"] == [
        {"gene": "CYP2C9", "phenotype": "RAPID_METABOLIZER", "diplotype": "*4/*35B"}
    ]
    assert profile["event_time"] == datetime(2018, 3, 6, 5, tzinfo=UTC)  # issued: effective is "2018"
    assert m.summary.skipped["Observation:genomic-other"] == 2  # the two variants
    assert m.summary.mapped == 6  # Patient, report, implication, genotype, two haplotypes


def test_existing_collection_bundle_keeps_its_profile():
    _, [(_, profile)] = run(FIXTURES / "fhir/pgx_collection_bundle.json")
    assert profile["phenotypes"] == [
        {"gene": "CYP2C19", "phenotype": "ULTRARAPID_METABOLIZER", "diplotype": "*17/*17"},
        {"gene": "CYP2D6", "phenotype": "POOR_METABOLIZER", "diplotype": "*4/*4"},
    ]


EMERGE = json.loads((IG / "emerge-pgx.json").read_text())


def resources(*ids):
    return [
        RawResource(f"e#{i}", copy.deepcopy(e["resource"]))
        for i, e in enumerate(EMERGE["entry"])
        if e["resource"]["id"] in ids
    ]


def test_genotype_alone_gets_its_cpic_phenotype():
    _, [(_, profile)] = run(resources("CGPatientExample01", "Pgx-geno-1001"))
    assert profile["phenotypes"] == [
        {"gene": "CYP2C19", "phenotype": "POOR_METABOLIZER", "diplotype": "*2/*2"}
    ]


def test_two_haplotypes_stand_in_for_the_genotype():
    patient, geno = resources("CGPatientExample01", "GenotypeExamplePharmVar")
    haplotypes = []
    for i, allele in enumerate(("*1", "*4")):
        h = copy.deepcopy(geno.data)
        h.update(id=f"h{i}", valueCodeableConcept={"text": f"CYP2D6{allele}"})
        h["code"]["coding"][0].update(code="84414-2", display="Haplotype Name")
        haplotypes.append(RawResource(f"h{i}", h))
    _, [(_, profile)] = run([patient, *haplotypes])
    assert profile["phenotypes"] == [
        {"gene": "CYP2D6", "phenotype": "INTERMEDIATE_METABOLIZER", "diplotype": "*1/*4"}
    ]


def test_bad_shapes_are_rejected_and_a_bare_report_is_skipped():
    patient, geno, imp = resources("CGPatientExample01", "Pgx-geno-1001", "TxImp01")
    geno.data["component"] = []
    geno.data["valueCodeableConcept"] = {"text": "positive"}
    imp.data["component"] = imp.data["component"][:1]  # only the medication assessed
    imp.data["derivedFrom"] = []
    bundle = json.loads((IG / "bundle-pgxexample.json").read_text())
    report = RawResource(
        "r", dict(bundle["entry"][0]["resource"], subject={"reference": "Patient/CGPatientExample01"})
    )
    m, profiles = run([patient, geno, imp, report])
    reasons = sorted(r.reason for r in m.summary.rejected)
    assert reasons == [
        "genotype Observation lacks a 48018-6 gene-studied component",
        "therapeutic implication states no metaboliser phenotype",
    ]
    assert profiles == [] and m.summary.skipped["DiagnosticReport:no-pharmacogenomic-results"] == 1


@pytest.mark.parametrize(
    ("gene", "text", "diplotype", "phenotype"),
    [
        ("CYP2D6", "CYP2D6 *4/*4", "*4/*4", "POOR_METABOLIZER"),
        ("CYP2D6", "*1/*4", "*1/*4", "INTERMEDIATE_METABOLIZER"),  # AS 1.0
        ("CYP2D6", "*1/*9", "*1/*9", "NORMAL_METABOLIZER"),  # AS 1.25
        ("CYP2D6", "*41/*41", "*41/*41", "INTERMEDIATE_METABOLIZER"),  # 0.25 + 0.25
        ("CYP2D6", "*1/*1x2", "*1/*1x2", "ULTRARAPID_METABOLIZER"),  # AS 3
        ("CYP2D6", "*2x3/*4", "*2x3/*4", "ULTRARAPID_METABOLIZER"),
        ("CYP2D6", "*1/*1xN", "*1/*1xN", "INDETERMINATE"),  # copy number unknown
        ("CYP2D6", "*1/*22", "*1/*22", "INDETERMINATE"),  # function not assigned
        ("CYP2C19", "*17/*17", "*17/*17", "ULTRARAPID_METABOLIZER"),
        ("CYP2C19", "CYP2C19*17/*1", "*1/*17", "RAPID_METABOLIZER"),
        ("CYP2C19", "*2/*17", "*2/*17", "INTERMEDIATE_METABOLIZER"),
        ("CYP2C19", "*1/*9", "*1/*9", "INTERMEDIATE_METABOLIZER"),  # CPIC: likely intermediate
        ("CYP2C19", "*2/*3", "*2/*3", "POOR_METABOLIZER"),
        ("CYP2C19", "*1/*12", "*1/*12", "INDETERMINATE"),  # uncertain function
    ],
)
def test_cpic_tables(gene, text, diplotype, phenotype):
    assert cpic.diplotype(text) == diplotype
    assert cpic.phenotype(gene, diplotype) == phenotype


def test_only_two_star_alleles_make_a_diplotype():
    assert cpic.diplotype("CYP2D6 *4") is None and cpic.diplotype("*1/*2/*3") is None
    assert cpic.phenotype("CYP2C9", "*1/*1") is None
