"""CPIC table lookups."""

from __future__ import annotations

import pytest

from workers.twin import cpic


@pytest.mark.parametrize(
    ("gene", "phenotype", "drug", "action"),
    [
        ("CYP2C19", "POOR_METABOLIZER", "citalopram", "ALTERNATIVE_OR_REDUCED_DOSE"),
        ("CYP2C19", "POOR_METABOLIZER", "escitalopram", "ALTERNATIVE_OR_REDUCED_DOSE"),
        ("CYP2C19", "POOR_METABOLIZER", "sertraline", "ALTERNATIVE_OR_REDUCED_DOSE"),
        ("CYP2C19", "ULTRARAPID_METABOLIZER", "escitalopram", "CONSIDER_ALTERNATIVE"),
        ("CYP2D6", "ULTRARAPID_METABOLIZER", "paroxetine", "CONSIDER_ALTERNATIVE"),
        ("CYP2D6", "POOR_METABOLIZER", "fluvoxamine", "LOWER_START_SLOWER_TITRATION"),
        ("CYP2D6", "POOR_METABOLIZER", "amitriptyline", "AVOID_OR_REDUCE_START_50PCT"),
        ("CYP2D6", "ULTRARAPID_METABOLIZER", "nortriptyline", "AVOID_OR_TITRATE_HIGHER"),
        ("CYP2D6", "INTERMEDIATE_METABOLIZER", "nortriptyline", "REDUCE_START_25PCT"),
        ("CYP2C19", "ULTRARAPID_METABOLIZER", "amitriptyline", "AVOID_TERTIARY_AMINE"),
        ("cyp2c19", "poor_metabolizer", "Sertraline", "ALTERNATIVE_OR_REDUCED_DOSE"),
    ],
)
def test_lookup_hits(gene, phenotype, drug, action):
    rec = cpic.lookup(gene, phenotype, drug)
    assert rec is not None and rec.action == action


@pytest.mark.parametrize(
    ("gene", "phenotype", "drug"),
    [
        ("CYP2C19", "NORMAL_METABOLIZER", "sertraline"),
        ("CYP2C19", "ULTRARAPID_METABOLIZER", "sertraline"),
        ("CYP2D6", "ULTRARAPID_METABOLIZER", "fluvoxamine"),  # no CPIC recommendation
        ("CYP2C19", "POOR_METABOLIZER", "nortriptyline"),  # secondary amine: CYP2D6 only
        ("CYP2D6", "INDETERMINATE", "paroxetine"),
        ("CYP2D6", "POOR_METABOLIZER", "fluoxetine"),
    ],
)
def test_lookup_misses(gene, phenotype, drug):
    assert cpic.lookup(gene, phenotype, drug) is None


def test_every_row_cites_a_guideline_and_a_known_action():
    assert len(cpic.TABLE) == len({(r.gene, r.phenotype, r.drug) for r in cpic.TABLE})
    for row in cpic.TABLE:
        assert row.guideline in cpic.GUIDELINES
        assert row.action in cpic.ACTIONS
        assert row.strength in {"STRONG", "MODERATE", "OPTIONAL"}


def test_interactions_are_sorted_and_complete():
    found = cpic.interactions(
        {"CYP2D6": "POOR_METABOLIZER", "CYP2C19": "POOR_METABOLIZER"},
        ["sertraline", "amitriptyline", "fluoxetine"],
    )
    assert [(r.drug, r.gene) for r in found] == [
        ("amitriptyline", "CYP2C19"),
        ("amitriptyline", "CYP2D6"),
        ("sertraline", "CYP2C19"),
    ]
