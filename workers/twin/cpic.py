"""CPIC gene-drug recommendations for antidepressants, loaded from versioned data files.

The knowledge lives in ``workers/twin/cpic_data/``, not in code:

``guidelines.json``
    One entry per guideline id: name, version, citation, DOI, PMID, URL.
``sources.json``
    The documents each row was checked against (see ``check`` below).
``cpic_ssri_snri_2023.csv``, ``cpic_tca_2016.csv``
    One row per (gene, phenotype, drug) for which the guideline recommends anything beyond
    "initiate therapy with the recommended starting dose" (a standard start followed by
    slower titration, or by a higher dose if the response is inadequate, counts): the action
    code, the CPIC classification of recommendation (STRONG, MODERATE, OPTIONAL), the guideline
    table (described by its content; table numbers were not checked), ``check`` and ``source``.
    "No recommendation" and "no action recommended" phenotypes have no row.

``check`` says how far a row was verified: ``VERIFIED`` (recommendation text and
classification read in ``source``), ``TEXT_ONLY`` (text read, classification not) or
``UNVERIFIED`` (not found in the sources read; carried over from the earlier hand-written
table and to be checked against the guideline itself). Alerts carry the check, so a
clinician sees how much weight the row has been given. Action codes summarise the guideline
wording; the guideline text is authoritative and must be read before acting.

Everything else looks up as ``None``. Phenotypes use the contract's ``MetabolizerPhenotype``
symbols; ``GeneticProfile.phenotypes[].gene`` is a free HGNC symbol, so CYP2B6 needs no
schema change.
"""

from __future__ import annotations

import csv
import functools
import io
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

DATA_PACKAGE = "workers.twin"
DATA_DIR = "cpic_data"
TABLE_FILES = {
    "CPIC_SSRI_2023": "cpic_ssri_snri_2023.csv",
    "CPIC_TCA_2016": "cpic_tca_2016.csv",
}
COLUMNS = ("gene", "phenotype", "drug", "action", "strength", "table", "check", "source")
STRENGTHS = frozenset({"STRONG", "MODERATE", "OPTIONAL"})
CHECKS = frozenset({"VERIFIED", "TEXT_ONLY", "UNVERIFIED"})
PHENOTYPES = frozenset(
    {
        "POOR_METABOLIZER",
        "INTERMEDIATE_METABOLIZER",
        "NORMAL_METABOLIZER",
        "RAPID_METABOLIZER",
        "ULTRARAPID_METABOLIZER",
    }
)

#: Action codes (no free text travels in alerts; these codes do).
ACTIONS: dict[str, str] = {
    "CONSIDER_ALTERNATIVE": "consider an alternative not predominantly metabolised by the gene",
    "ALTERNATIVE_OR_REDUCED_DOSE": (
        "consider an alternative; if used, lower starting dose, slower titration and a 50% "
        "lower maintenance dose"
    ),
    "LOWER_START_SLOWER_TITRATION": "consider a lower starting dose and slower titration",
    "REDUCE_START_50PCT_MAX_10MG_OR_ALTERNATIVE": (
        "start at 50% of the starting dose (e.g. 5 mg) and titrate to at most 10 mg, or "
        "consider an alternative not predominantly metabolised by the gene"
    ),
    "ALTERNATIVE_OR_HIGHER_MAINTENANCE": (
        "select an alternative; if used, standard start and a maintenance dose possibly 50% or more higher"
    ),
    "AVOID_OR_REDUCE_START_50PCT": (
        "avoid; consider an alternative; if warranted, 50% lower starting dose with TDM"
    ),
    "AVOID_OR_TITRATE_HIGHER": (
        "avoid; consider an alternative; if warranted, titrate to a higher target dose with TDM"
    ),
    "REDUCE_START_25PCT": "consider a 25% lower starting dose, with TDM",
    "AVOID_TERTIARY_AMINE": (
        "avoid tertiary amine; consider an alternative (e.g. nortriptyline, desipramine); if a "
        "tertiary amine is warranted, guide the dose with TDM"
    ),
    "ALTERNATIVE_OR_HIGHER_MAINTENANCE_IF_NO_RESPONSE": (
        "consider an alternative not predominantly metabolised by the gene; if used and standard "
        "maintenance dosing is not effective, titrate to a higher maintenance dose"
    ),
    "REDUCE_START_50PCT_LOWER_MAINTENANCE_50PCT": (
        "consider a 50% lower starting dose, slower titration and a 50% lower maintenance dose"
    ),
    "REDUCE_START_25_50PCT_OR_ALTERNATIVE": (
        "consider a 25-50% lower starting dose and slower titration, or an alternative not "
        "predominantly metabolised by the gene"
    ),
    "LOWER_START_LOWER_MAINTENANCE_25PCT_OR_ALTERNATIVE": (
        "consider a lower starting dose, slower titration and a 25% lower maintenance dose, or an "
        "alternative not predominantly metabolised by the gene"
    ),
    "STANDARD_START_SLOWER_TITRATION": (
        "start at the recommended dose; consider slower titration and a lower maintenance dose"
    ),
    "STANDARD_START_HIGHER_IF_NO_RESPONSE": (
        "start at the recommended dose; if the response to standard maintenance dosing is "
        "inadequate, titrate to a higher maintenance dose or consider an alternative not "
        "predominantly metabolised by the gene"
    ),
}


class CpicDataError(ValueError):
    """A CPIC data file is malformed (unknown code, duplicate row, missing source)."""


@dataclass(frozen=True)
class Recommendation:
    """One CPIC table row: (gene, phenotype, drug) to an action code."""

    gene: str
    phenotype: str
    drug: str
    action: str
    strength: str
    guideline: str
    table: str
    check: str
    source: str


def _read(name: str) -> str:
    return (resources.files(DATA_PACKAGE) / DATA_DIR / name).read_text(encoding="utf-8")


@functools.cache
def guidelines() -> dict[str, dict[str, Any]]:
    """Guideline id to its name, version, citation, DOI, PMID and URL."""
    data: dict[str, dict[str, Any]] = json.loads(_read("guidelines.json"))
    return data


@functools.cache
def sources() -> dict[str, dict[str, str]]:
    """Source id to what was read and where (the ``source`` column of the tables)."""
    data: dict[str, dict[str, str]] = json.loads(_read("sources.json"))
    return data


def _row(guideline: str, raw: dict[str, str], line: int) -> Recommendation:
    where = f"{TABLE_FILES[guideline]}:{line}"
    if tuple(raw) != COLUMNS:
        raise CpicDataError(f"{where}: columns {tuple(raw)} != {COLUMNS}")
    rec = Recommendation(
        gene=raw["gene"].upper(),
        phenotype=raw["phenotype"].upper(),
        drug=raw["drug"].lower(),
        action=raw["action"],
        strength=raw["strength"],
        guideline=guideline,
        table=raw["table"],
        check=raw["check"],
        source=raw["source"],
    )
    if rec.phenotype not in PHENOTYPES:
        raise CpicDataError(f"{where}: unknown phenotype {rec.phenotype}")
    if rec.action not in ACTIONS:
        raise CpicDataError(f"{where}: unknown action {rec.action}")
    if rec.strength not in STRENGTHS:
        raise CpicDataError(f"{where}: unknown strength {rec.strength}")
    if rec.check not in CHECKS or (rec.check != "UNVERIFIED" and rec.source not in sources()):
        raise CpicDataError(f"{where}: check {rec.check} needs a known source, got {rec.source!r}")
    return rec


@functools.cache
def table() -> tuple[Recommendation, ...]:
    """Every row of every guideline file, in file order.

    Raises
    ------
    CpicDataError
        A row with an unknown code, a verified row without a known source, or a duplicate
        (gene, phenotype, drug).
    """
    rows: list[Recommendation] = []
    for guideline, name in TABLE_FILES.items():
        if guideline not in guidelines():
            raise CpicDataError(f"{name}: guideline {guideline} missing from guidelines.json")
        reader = csv.DictReader(io.StringIO(_read(name)))
        rows += [_row(guideline, raw, i) for i, raw in enumerate(reader, start=2)]
    keys = [(r.gene, r.phenotype, r.drug) for r in rows]
    if len(keys) != len(set(keys)):
        raise CpicDataError("duplicate (gene, phenotype, drug) rows")
    return tuple(rows)


@functools.cache
def _index() -> dict[tuple[str, str, str], Recommendation]:
    return {(r.gene, r.phenotype, r.drug): r for r in table()}


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
    >>> lookup("CYP2B6", "POOR_METABOLIZER", "sertraline").guideline
    'CPIC_SSRI_2023'
    >>> lookup("CYP2C19", "NORMAL_METABOLIZER", "sertraline") is None
    True
    """
    return _index().get((gene.upper(), phenotype.upper(), drug.lower()))


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


def evidence(rec: Recommendation) -> dict[str, str]:
    """The alert evidence of a row: codes only, with the guideline version and the check."""
    return {
        "gene": rec.gene,
        "phenotype": rec.phenotype,
        "drug": rec.drug,
        "action": rec.action,
        "strength": rec.strength,
        "guideline": rec.guideline,
        "guideline_version": str(guidelines()[rec.guideline]["version"]),
        "guideline_doi": str(guidelines()[rec.guideline]["doi"]),
        "check": rec.check,
    }
