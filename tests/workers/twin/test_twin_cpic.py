"""CPIC gene-drug rows: one case per data-file row, stated independently of the files.

Each expected row below was written from the source named in ``cpic_data/sources.json``
(``VERIFIED``/``TEXT_ONLY``) or carried over from the earlier table (``UNVERIFIED``); a row
added to or changed in the data files without changing this list fails
``test_table_has_exactly_the_expected_rows``.
"""

from __future__ import annotations

import pytest

from workers.twin import cpic
from workers.twin.state import apply_genetic_profile, apply_medication, new_twin

PM, IM, RM, UM = (
    "POOR_METABOLIZER",
    "INTERMEDIATE_METABOLIZER",
    "RAPID_METABOLIZER",
    "ULTRARAPID_METABOLIZER",
)

EXPECTED = [
    ("CYP2C19", PM, "citalopram", "ALTERNATIVE_OR_REDUCED_DOSE", "STRONG", "VERIFIED"),
    ("CYP2C19", PM, "escitalopram", "ALTERNATIVE_OR_REDUCED_DOSE", "STRONG", "VERIFIED"),
    ("CYP2C19", UM, "citalopram", "ALTERNATIVE_OR_HIGHER_MAINTENANCE_IF_NO_RESPONSE", "STRONG", "VERIFIED"),
    ("CYP2C19", UM, "escitalopram", "ALTERNATIVE_OR_HIGHER_MAINTENANCE_IF_NO_RESPONSE", "STRONG", "VERIFIED"),
    ("CYP2C19", IM, "citalopram", "STANDARD_START_SLOWER_TITRATION", "MODERATE", "VERIFIED"),
    ("CYP2C19", IM, "escitalopram", "STANDARD_START_SLOWER_TITRATION", "MODERATE", "VERIFIED"),
    ("CYP2C19", RM, "citalopram", "STANDARD_START_HIGHER_IF_NO_RESPONSE", "OPTIONAL", "VERIFIED"),
    ("CYP2C19", RM, "escitalopram", "STANDARD_START_HIGHER_IF_NO_RESPONSE", "OPTIONAL", "VERIFIED"),
    ("CYP2C19", PM, "sertraline", "ALTERNATIVE_OR_REDUCED_DOSE", "MODERATE", "VERIFIED"),
    ("CYP2C19", IM, "sertraline", "STANDARD_START_SLOWER_TITRATION", "MODERATE", "VERIFIED"),
    (
        "CYP2B6",
        PM,
        "sertraline",
        "LOWER_START_LOWER_MAINTENANCE_25PCT_OR_ALTERNATIVE",
        "OPTIONAL",
        "VERIFIED",
    ),
    ("CYP2B6", IM, "sertraline", "STANDARD_START_SLOWER_TITRATION", "OPTIONAL", "VERIFIED"),
    ("CYP2D6", UM, "paroxetine", "CONSIDER_ALTERNATIVE", "MODERATE", "VERIFIED"),
    ("CYP2D6", PM, "paroxetine", "REDUCE_START_50PCT_LOWER_MAINTENANCE_50PCT", "MODERATE", "VERIFIED"),
    ("CYP2D6", IM, "paroxetine", "LOWER_START_SLOWER_TITRATION", "OPTIONAL", "VERIFIED"),
    ("CYP2D6", PM, "fluvoxamine", "REDUCE_START_25_50PCT_OR_ALTERNATIVE", "OPTIONAL", "VERIFIED"),
    ("CYP2D6", PM, "venlafaxine", "CONSIDER_ALTERNATIVE", "OPTIONAL", "VERIFIED"),
    ("CYP2D6", PM, "vortioxetine", "REDUCE_START_50PCT_MAX_10MG_OR_ALTERNATIVE", "MODERATE", "VERIFIED"),
    ("CYP2D6", UM, "vortioxetine", "ALTERNATIVE_OR_HIGHER_MAINTENANCE", "OPTIONAL", "VERIFIED"),
    ("CYP2D6", UM, "amitriptyline", "AVOID_OR_TITRATE_HIGHER", "STRONG", "VERIFIED"),
    ("CYP2D6", PM, "amitriptyline", "AVOID_OR_REDUCE_START_50PCT", "STRONG", "VERIFIED"),
    ("CYP2D6", IM, "amitriptyline", "REDUCE_START_25PCT", "MODERATE", "VERIFIED"),
    ("CYP2D6", UM, "clomipramine", "AVOID_OR_TITRATE_HIGHER", "OPTIONAL", "VERIFIED"),
    ("CYP2D6", PM, "clomipramine", "AVOID_OR_REDUCE_START_50PCT", "OPTIONAL", "VERIFIED"),
    ("CYP2D6", IM, "clomipramine", "REDUCE_START_25PCT", "OPTIONAL", "VERIFIED"),
    ("CYP2D6", UM, "doxepin", "AVOID_OR_TITRATE_HIGHER", "OPTIONAL", "VERIFIED"),
    ("CYP2D6", PM, "doxepin", "AVOID_OR_REDUCE_START_50PCT", "OPTIONAL", "VERIFIED"),
    ("CYP2D6", IM, "doxepin", "REDUCE_START_25PCT", "OPTIONAL", "VERIFIED"),
    ("CYP2D6", UM, "imipramine", "AVOID_OR_TITRATE_HIGHER", "OPTIONAL", "VERIFIED"),
    ("CYP2D6", PM, "imipramine", "AVOID_OR_REDUCE_START_50PCT", "OPTIONAL", "VERIFIED"),
    ("CYP2D6", IM, "imipramine", "REDUCE_START_25PCT", "OPTIONAL", "VERIFIED"),
    ("CYP2D6", UM, "trimipramine", "AVOID_OR_TITRATE_HIGHER", "OPTIONAL", "VERIFIED"),
    ("CYP2D6", PM, "trimipramine", "AVOID_OR_REDUCE_START_50PCT", "OPTIONAL", "VERIFIED"),
    ("CYP2D6", IM, "trimipramine", "REDUCE_START_25PCT", "OPTIONAL", "VERIFIED"),
    ("CYP2D6", UM, "desipramine", "AVOID_OR_TITRATE_HIGHER", "OPTIONAL", "VERIFIED"),
    ("CYP2D6", PM, "desipramine", "AVOID_OR_REDUCE_START_50PCT", "OPTIONAL", "VERIFIED"),
    ("CYP2D6", IM, "desipramine", "REDUCE_START_25PCT", "OPTIONAL", "VERIFIED"),
    ("CYP2D6", UM, "nortriptyline", "AVOID_OR_TITRATE_HIGHER", "STRONG", "VERIFIED"),
    ("CYP2D6", PM, "nortriptyline", "AVOID_OR_REDUCE_START_50PCT", "STRONG", "VERIFIED"),
    ("CYP2D6", IM, "nortriptyline", "REDUCE_START_25PCT", "OPTIONAL", "VERIFIED"),
    ("CYP2C19", UM, "amitriptyline", "AVOID_TERTIARY_AMINE", "OPTIONAL", "VERIFIED"),
    ("CYP2C19", RM, "amitriptyline", "AVOID_TERTIARY_AMINE", "OPTIONAL", "VERIFIED"),
    ("CYP2C19", PM, "amitriptyline", "AVOID_OR_REDUCE_START_50PCT", "MODERATE", "VERIFIED"),
    ("CYP2C19", UM, "clomipramine", "AVOID_TERTIARY_AMINE", "OPTIONAL", "VERIFIED"),
    ("CYP2C19", RM, "clomipramine", "AVOID_TERTIARY_AMINE", "OPTIONAL", "VERIFIED"),
    ("CYP2C19", PM, "clomipramine", "AVOID_OR_REDUCE_START_50PCT", "OPTIONAL", "VERIFIED"),
    ("CYP2C19", UM, "doxepin", "AVOID_TERTIARY_AMINE", "OPTIONAL", "VERIFIED"),
    ("CYP2C19", RM, "doxepin", "AVOID_TERTIARY_AMINE", "OPTIONAL", "VERIFIED"),
    ("CYP2C19", PM, "doxepin", "AVOID_OR_REDUCE_START_50PCT", "OPTIONAL", "VERIFIED"),
    ("CYP2C19", UM, "imipramine", "AVOID_TERTIARY_AMINE", "OPTIONAL", "VERIFIED"),
    ("CYP2C19", RM, "imipramine", "AVOID_TERTIARY_AMINE", "OPTIONAL", "VERIFIED"),
    ("CYP2C19", PM, "imipramine", "AVOID_OR_REDUCE_START_50PCT", "OPTIONAL", "VERIFIED"),
    ("CYP2C19", UM, "trimipramine", "AVOID_TERTIARY_AMINE", "OPTIONAL", "VERIFIED"),
    ("CYP2C19", RM, "trimipramine", "AVOID_TERTIARY_AMINE", "OPTIONAL", "VERIFIED"),
    ("CYP2C19", PM, "trimipramine", "AVOID_OR_REDUCE_START_50PCT", "OPTIONAL", "VERIFIED"),
]


def _id(row: tuple[str, ...]) -> str:
    return f"{row[0]}-{row[1].split('_')[0].lower()}-{row[2]}"


@pytest.mark.parametrize("row", EXPECTED, ids=[_id(r) for r in EXPECTED])
def test_row(row, genetic_factory, med_factory):
    gene, phenotype, drug, action, strength, check = row
    rec = cpic.lookup(gene, phenotype, drug)
    assert rec is not None
    assert (rec.action, rec.strength, rec.check) == (action, strength, check)
    assert rec.guideline in cpic.guidelines()
    assert check == "UNVERIFIED" or rec.source in cpic.sources()
    # The row reaches a patient: phenotype on file, then the drug started.
    state, _ = apply_genetic_profile(new_twin("p_" + "cd" * 16), genetic_factory(0, **{gene: phenotype}))
    _, out = apply_medication(state, med_factory(3, drug))
    alerts = [a for a in out.alerts if a["alert_type"] == "GENE_DRUG_INTERACTION"]
    assert len(alerts) == 1
    ev = alerts[0]["evidence"]
    assert (ev["gene"], ev["drug"], ev["action"], ev["check"]) == (gene, drug, action, check)
    assert ev["guideline_doi"] == cpic.guidelines()[rec.guideline]["doi"]


def test_table_has_exactly_the_expected_rows():
    assert sorted((r.gene, r.phenotype, r.drug) for r in cpic.table()) == sorted(
        (g, p, d) for g, p, d, *_ in EXPECTED
    )


@pytest.mark.parametrize(
    ("gene", "phenotype", "drug"),
    [
        ("CYP2C19", "NORMAL_METABOLIZER", "sertraline"),
        ("CYP2C19", "NORMAL_METABOLIZER", "citalopram"),  # initiate the recommended starting dose
        ("CYP2C19", RM, "sertraline"),  # initiate the recommended starting dose
        ("CYP2C19", UM, "sertraline"),  # initiate the recommended starting dose
        ("CYP2B6", "NORMAL_METABOLIZER", "sertraline"),
        ("CYP2B6", RM, "sertraline"),  # initiate the recommended starting dose
        ("CYP2B6", UM, "sertraline"),  # initiate the recommended starting dose
        ("CYP2C19", IM, "amitriptyline"),  # initiate the recommended starting dose
        ("CYP2D6", IM, "vortioxetine"),  # initiate the recommended starting dose
        ("CYP2D6", IM, "venlafaxine"),  # no action recommended
        ("CYP2D6", IM, "fluvoxamine"),  # initiate the recommended starting dose
        ("CYP2D6", UM, "fluvoxamine"),  # no CPIC recommendation
        ("CYP2D6", UM, "venlafaxine"),  # no action recommended
        ("CYP2C19", PM, "nortriptyline"),  # secondary amine: CYP2D6 only
        ("CYP2D6", "INDETERMINATE", "paroxetine"),
        ("CYP2D6", PM, "fluoxetine"),
    ],
)
def test_lookup_misses(gene, phenotype, drug):
    assert cpic.lookup(gene, phenotype, drug) is None


def test_every_action_code_is_used_and_described():
    used = {r.action for r in cpic.table()}
    assert used == set(cpic.ACTIONS)
    assert all(text and text == text.strip() for text in cpic.ACTIONS.values())


def test_lookup_is_case_insensitive():
    rec = cpic.lookup("cyp2c19", "poor_metabolizer", "Sertraline")
    assert rec is not None and rec.action == "ALTERNATIVE_OR_REDUCED_DOSE"


def test_guidelines_cite_version_doi_and_url():
    for gid, g in cpic.guidelines().items():
        assert gid in cpic.TABLE_FILES
        assert g["version"] and g["doi"].startswith("10.") and g["url"].startswith("https://")


def test_a_malformed_row_is_refused(monkeypatch):
    bad = (
        "gene,phenotype,drug,action,strength,table,check,source\n"
        "CYP2D6,POOR_METABOLIZER,x,NOPE,STRONG,t,UNVERIFIED,\n"
    )
    real = cpic._read
    monkeypatch.setattr(cpic, "_read", lambda name: bad if name.endswith(".csv") else real(name))
    cpic.table.cache_clear()
    try:
        with pytest.raises(cpic.CpicDataError, match="unknown action"):
            cpic.table()
    finally:
        cpic.table.cache_clear()


def test_interactions_are_sorted_and_complete():
    found = cpic.interactions(
        {"CYP2D6": PM, "CYP2C19": PM, "CYP2B6": PM},
        ["sertraline", "amitriptyline", "fluoxetine"],
    )
    assert [(r.drug, r.gene) for r in found] == [
        ("amitriptyline", "CYP2C19"),
        ("amitriptyline", "CYP2D6"),
        ("sertraline", "CYP2B6"),
        ("sertraline", "CYP2C19"),
    ]
