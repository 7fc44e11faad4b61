"""CPIC gene-drug recommendations for antidepressants, encoded as data.

Each row pairs a gene phenotype with a drug and the guideline's therapeutic recommendation,
reduced to an action code and the CPIC classification of recommendation (STRONG, MODERATE,
OPTIONAL). Only phenotype/drug pairs for which the guideline makes a recommendation other
than "initiate therapy with the recommended starting dose" are listed; everything else
looks up as ``None``. Action codes summarise the guideline wording; the guideline text
itself (https://cpicpgx.org/guidelines/) is authoritative and must be read before acting.

Sources
-------
CPIC_SSRI_2023
    Bousman CA, Stevenson JM, Ramsey LB, et al. Clinical Pharmacogenetics Implementation
    Consortium (CPIC) Guideline for CYP2D6, CYP2C19, CYP2B6, SLC6A4, and HTR2A Genotypes and
    Serotonin Reuptake Inhibitor Antidepressants. Clin Pharmacol Ther. 2023;114(1):51-68.
    doi:10.1002/cpt.2903. Updates Hicks JK, et al. Clin Pharmacol Ther. 2015;98(2):127-134.
    doi:10.1002/cpt.147 (CPIC_SSRI_2015).
CPIC_TCA_2016
    Hicks JK, Sangkuhl K, Swen JJ, et al. Clinical Pharmacogenetics Implementation Consortium
    Guideline (CPIC) for CYP2D6 and CYP2C19 Genotypes and Dosing of Tricyclic
    Antidepressants: 2016 Update. Clin Pharmacol Ther. 2017;102(1):37-44. doi:10.1002/cpt.597.
    Strengths are given for amitriptyline/nortriptyline; the guideline rates extrapolation to
    the other TCAs OPTIONAL.
"""

from __future__ import annotations

from dataclasses import dataclass

GUIDELINES: dict[str, str] = {
    "CPIC_SSRI_2023": "doi:10.1002/cpt.2903",
    "CPIC_SSRI_2015": "doi:10.1002/cpt.147",
    "CPIC_TCA_2016": "doi:10.1002/cpt.597",
}

#: Action codes (no free text travels in alerts; these codes do).
ACTIONS: dict[str, str] = {
    "CONSIDER_ALTERNATIVE": "consider an alternative not predominantly metabolised by the gene",
    "ALTERNATIVE_OR_REDUCED_DOSE": (
        "consider an alternative; if used, lower starting dose, slower titration and a 50% "
        "lower maintenance dose"
    ),
    "LOWER_START_SLOWER_TITRATION": "consider a lower starting dose and slower titration",
    "AVOID_OR_REDUCE_START_50PCT": (
        "avoid; consider an alternative; if warranted, 50% lower starting dose with TDM"
    ),
    "AVOID_OR_TITRATE_HIGHER": (
        "avoid; consider an alternative; if warranted, titrate to a higher target dose with TDM"
    ),
    "REDUCE_START_25PCT": "consider a 25% lower starting dose, with TDM",
    "AVOID_TERTIARY_AMINE": (
        "avoid tertiary amine; consider an alternative (e.g. nortriptyline, desipramine)"
    ),
}

PM = "POOR_METABOLIZER"
IM = "INTERMEDIATE_METABOLIZER"
RM = "RAPID_METABOLIZER"
UM = "ULTRARAPID_METABOLIZER"

TERTIARY_AMINE_TCAS = ("amitriptyline", "clomipramine", "doxepin", "imipramine", "trimipramine")
TCAS = (*TERTIARY_AMINE_TCAS, "desipramine", "nortriptyline")
_PRIMARY_TCAS = ("amitriptyline", "nortriptyline")


@dataclass(frozen=True)
class Recommendation:
    """One CPIC table row: (gene, phenotype, drug) to an action code."""

    gene: str
    phenotype: str
    drug: str
    action: str
    strength: str
    guideline: str


def _ssri_rows() -> list[Recommendation]:
    g = "CPIC_SSRI_2023"
    rows: list[Recommendation] = []
    for drug in ("citalopram", "escitalopram"):
        rows += [
            Recommendation("CYP2C19", PM, drug, "ALTERNATIVE_OR_REDUCED_DOSE", "MODERATE", g),
            Recommendation("CYP2C19", UM, drug, "CONSIDER_ALTERNATIVE", "MODERATE", g),
        ]
    rows += [
        Recommendation("CYP2C19", PM, "sertraline", "ALTERNATIVE_OR_REDUCED_DOSE", "MODERATE", g),
        Recommendation("CYP2D6", UM, "paroxetine", "CONSIDER_ALTERNATIVE", "OPTIONAL", g),
        Recommendation("CYP2D6", PM, "paroxetine", "LOWER_START_SLOWER_TITRATION", "OPTIONAL", g),
        Recommendation("CYP2D6", PM, "fluvoxamine", "LOWER_START_SLOWER_TITRATION", "OPTIONAL", g),
    ]
    return rows


def _tca_rows() -> list[Recommendation]:
    g = "CPIC_TCA_2016"
    rows = []
    for drug in TCAS:
        primary = drug in _PRIMARY_TCAS
        rows += [
            Recommendation(
                "CYP2D6",
                UM,
                drug,
                "AVOID_OR_TITRATE_HIGHER",
                "STRONG" if primary else "OPTIONAL",
                g,
            ),
            Recommendation(
                "CYP2D6",
                PM,
                drug,
                "AVOID_OR_REDUCE_START_50PCT",
                "STRONG" if primary else "OPTIONAL",
                g,
            ),
            Recommendation(
                "CYP2D6", IM, drug, "REDUCE_START_25PCT", "MODERATE" if primary else "OPTIONAL", g
            ),
        ]
    for drug in TERTIARY_AMINE_TCAS:
        rows += [
            Recommendation("CYP2C19", UM, drug, "AVOID_TERTIARY_AMINE", "OPTIONAL", g),
            Recommendation("CYP2C19", RM, drug, "AVOID_TERTIARY_AMINE", "OPTIONAL", g),
            Recommendation(
                "CYP2C19",
                PM,
                drug,
                "AVOID_OR_REDUCE_START_50PCT",
                "MODERATE" if drug == "amitriptyline" else "OPTIONAL",
                g,
            ),
        ]
    return rows


TABLE: tuple[Recommendation, ...] = (*_ssri_rows(), *_tca_rows())
_INDEX: dict[tuple[str, str, str], Recommendation] = {(r.gene, r.phenotype, r.drug): r for r in TABLE}


def lookup(gene: str, phenotype: str, drug: str) -> Recommendation | None:
    """Return the CPIC recommendation for a gene phenotype and drug, if any.

    Parameters
    ----------
    gene
        HGNC symbol, e.g. ``"CYP2C19"`` (case-insensitive).
    phenotype
        Contract phenotype symbol, e.g. ``"POOR_METABOLIZER"``.
    drug
        Generic drug name (case-insensitive).

    Returns
    -------
    Recommendation or None
        ``None`` when the guideline recommends standard dosing or has no recommendation.

    Examples
    --------
    >>> lookup("CYP2C19", "POOR_METABOLIZER", "Sertraline").action
    'ALTERNATIVE_OR_REDUCED_DOSE'
    >>> lookup("CYP2C19", "NORMAL_METABOLIZER", "sertraline") is None
    True
    """
    return _INDEX.get((gene.upper(), phenotype.upper(), drug.lower()))


def interactions(phenotypes: dict[str, str], drugs: list[str]) -> list[Recommendation]:
    """Return every recommendation triggered by ``phenotypes`` (gene to phenotype) and drugs.

    The result is ordered by drug, then gene, so it is deterministic.
    """
    found = []
    for drug in sorted(drugs):
        for gene in sorted(phenotypes):
            rec = lookup(gene, phenotypes[gene], drug)
            if rec is not None:
                found.append(rec)
    return found
