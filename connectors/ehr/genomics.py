"""HL7 Genomics Reporting pharmacogenomic results -> one GeneticProfile per patient.

Accepted shapes (with or without a grouping ``DiagnosticReport``):

- genotype Observations (LOINC 84413-4) with a gene-studied component (48018-6): the
  diplotype, and for CYP2D6 / CYP2C19 the CPIC phenotype (:mod:`connectors.ehr.cpic`);
  other genes are kept with their genotype and an UNKNOWN phenotype;
- haplotype Observations (84414-2): two haplotypes of a gene stand in for a missing genotype;
- therapeutic implications (``therapeutic-implication`` code of the IG's TBD code system, or
  the older 53040-2 / 53037-8 shapes) whose metaboliser phenotype is stated in a component
  (``therapeutic-implication``, ``predicted-therapeutic-implication``, 53040-2, 51961-1) or in
  ``valueCodeableConcept``; the gene comes from a 48018-6 component or the genotype it is
  ``derivedFrom``. A phenotype the lab states wins over the one looked up from CPIC.

Variants, sequences and other genomic Observations are counted as skipped. Everything a
profile was built from is counted as mapped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from connectors.ehr import codes, cpic
from connectors.ehr.clinical import (
    Deferred,
    MapContext,
    Origin,
    Records,
    codings,
    observation_time,
    to_utc,
)
from connectors.exceptions import FhirMappingError, FhirSkip
from connectors.records import envelope, event_id


def phenotype_symbol(text: str) -> str:
    """'Poor metabolizer' -> POOR_METABOLIZER; UNKNOWN when no known word is present."""
    low = text.lower()
    return next((sym for word, sym in codes.PHENOTYPE_WORDS if word in low), "UNKNOWN")


def _concept_text(concept: Any) -> str | None:
    if concept is None:
        return None
    parts = [c.display or c.code for c in codings(concept) if c.display or c.code]
    parts += [concept.text] if concept.text else []
    return " ".join(p for p in parts if p) or None


def _gene(concept: Any) -> str | None:
    for coding in codings(concept):
        code = coding.code or ""
        key = code if code.startswith("HGNC:") else f"HGNC:{code}"
        if key in codes.HGNC_SYMBOLS:
            return codes.HGNC_SYMBOLS[key]
        if coding.display:
            return coding.display.split()[0].upper()
    return concept.text.split()[0].upper() if concept is not None and concept.text else None


def _codes(concept: Any) -> set[str]:
    return {c.code for c in codings(concept) if c.code}


def _stated_phenotype(concept: Any) -> str | None:
    """A metaboliser phenotype from LOINC answer codes or words; None when it states none."""
    for code in _codes(concept):
        if code in codes.METABOLIZER_ANSWERS:
            return codes.METABOLIZER_ANSWERS[code]
    text = _concept_text(concept)
    symbol = phenotype_symbol(text) if text else "UNKNOWN"
    return None if symbol == "UNKNOWN" else symbol


def genomic_kind(obs: Any) -> str:
    """genotype | haplotype | implication | other, from the Observation's code."""
    found = _codes(obs.code)
    if codes.GENOTYPE_DISPLAY in found:
        return "genotype"
    if codes.HAPLOTYPE_NAME in found:
        return "haplotype"
    if found & codes.IMPLICATION_CODES:
        return "implication"
    return "other"


@dataclass(slots=True)
class _Genotype:
    origin: Origin
    gene: str
    text: str
    diplotype: str | None
    when: datetime


@dataclass(slots=True)
class _Implication:
    origin: Origin
    genes: list[str]
    derived: list[str]
    phenotype: str
    diplotype: str | None
    when: datetime


@dataclass
class _Patient:
    genotypes: list[_Genotype] = field(default_factory=list)
    haplotypes: dict[str, list[_Genotype]] = field(default_factory=dict)
    implications: list[_Implication] = field(default_factory=list)
    reports: list[Origin] = field(default_factory=list)
    keys: dict[str, _Genotype] = field(default_factory=dict)


@dataclass
class GenomicsCollector:
    """Collect genotypes, haplotypes, implications and reports; ``finish`` builds profiles."""

    ctx: MapContext
    patients: dict[str, _Patient] = field(default_factory=dict)

    def add(self, obs: Any, pid: str, origin: Origin, keys: list[str]) -> None:
        """Remember one genomics Observation; FhirSkip for shapes a profile does not carry."""
        kind = genomic_kind(obs)
        state = self.patients.setdefault(pid, _Patient())
        when = observation_time(obs)
        genes = [g for g in (_gene(c.valueCodeableConcept) for c in obs.component or ()
                             if codes.GENE_STUDIED in _codes(c.code)) if g]
        if kind in ("genotype", "haplotype"):
            text = _concept_text(obs.valueCodeableConcept) or obs.valueString
            if not text:
                raise FhirMappingError(f"{kind} Observation has no value")
            gene = next((g for g in genes if g in text.upper()), genes[0] if genes else None)
            if gene is None and "*" in text:  # "CYP2D6 *4/*4" without a gene component
                prefix = text.split("*")[0].split()
                gene = prefix[0].upper() if prefix else None
            if not gene:
                raise FhirMappingError(f"{kind} Observation lacks a 48018-6 gene-studied component")
            entry = _Genotype(origin, gene, text, cpic.diplotype(text), when)
            if kind == "genotype":
                state.genotypes.append(entry)
                for key in keys:
                    state.keys[key] = entry
            else:
                state.haplotypes.setdefault(gene, []).append(entry)
            return
        if kind == "implication":
            stated = None
            holders = [c for c in obs.component or () if _codes(c.code) & codes.PHENOTYPE_COMPONENTS]
            for holder in [*holders, obs]:
                stated = _stated_phenotype(holder.valueCodeableConcept) or (
                    phenotype_symbol(holder.valueString)
                    if getattr(holder, "valueString", None) else None)
                if stated and stated != "UNKNOWN":
                    break
            if not stated or stated == "UNKNOWN":
                raise FhirMappingError("therapeutic implication states no metaboliser phenotype")
            text = _concept_text(obs.valueCodeableConcept)
            state.implications.append(_Implication(
                origin, genes, [d.reference for d in obs.derivedFrom or () if d.reference],
                stated, cpic.diplotype(text), when))
            return
        raise FhirSkip("Observation:genomic-other")

    def add_report(self, pid: str, origin: Origin) -> None:
        """A grouping DiagnosticReport: part of the patient's profile when it has results."""
        self.patients.setdefault(pid, _Patient()).reports.append(origin)

    def finish(self) -> Iterator[Deferred]:
        for pid, state in self.patients.items():
            members = ([g.origin for g in state.genotypes] + [i.origin for i in state.implications]
                       + [h.origin for hs in state.haplotypes.values() for h in hs] + state.reports)
            if state.genotypes or state.implications or state.haplotypes:
                yield Deferred(pid, members, partial(self._build, pid=pid, state=state))
            elif state.reports:
                yield Deferred(pid, members, _report_alone)

    def _build(self, pid: str, state: _Patient) -> Records:
        genes: dict[str, dict[str, Any]] = {}
        times: list[datetime] = []
        for gene, haplotypes in state.haplotypes.items():
            alleles = [a for h in haplotypes for a in cpic.star_alleles(h.text)][:2]
            diplo = cpic.diplotype(" ".join(alleles)) if len(haplotypes) == 2 else None
            genes[gene] = _entry(gene, diplo, None)
            times += [h.when for h in haplotypes]
        for geno in sorted(state.genotypes, key=lambda g: g.when):
            genes[geno.gene] = _entry(geno.gene, geno.diplotype, geno.text)
            times.append(geno.when)
        for imp in sorted(state.implications, key=lambda i: i.when):
            targets = set(imp.genes) | {state.keys[r].gene for r in imp.derived if r in state.keys}
            times.append(imp.when)
            if len(targets) != 1:
                continue  # the implication names no single gene: the genotypes speak for it
            gene = targets.pop()
            current = genes.get(gene) or _entry(gene, imp.diplotype, None)
            current["phenotype"] = imp.phenotype
            current["diplotype"] = current["diplotype"] or imp.diplotype
            genes[gene] = current
        if not genes:
            raise FhirMappingError("no gene could be read from the genomics results")
        ids = ",".join(sorted(str(o.resource_id) for o in (
            [g.origin for g in state.genotypes] + [i.origin for i in state.implications])))
        rec = envelope(eid=event_id(self.ctx.source, "GeneticProfile", pid, ids), patient_id=pid,
                       event_time=max(times), received_time=self.ctx.received_time,
                       source=self.ctx.source)
        rec["phenotypes"] = [genes[g] for g in sorted(genes)]
        return [("GeneticProfile", rec)]


def _entry(gene: str, diplo: str | None, text: str | None) -> dict[str, Any]:
    """One PharmacogenomicPhenotype: CPIC phenotype for CYP2D6/CYP2C19, else UNKNOWN; for
    genes without a star-allele diplotype the reported genotype text is kept."""
    kept = diplo if gene in cpic.CPIC_GENES else None
    if kept is None and text:  # as reported, without the gene name in front
        kept = text[len(gene):].strip(" :-") if text.upper().startswith(gene) else text
    kept = kept or diplo
    return {"gene": gene, "phenotype": cpic.phenotype(gene, diplo) or "UNKNOWN",
            "diplotype": kept or None}


def report_time(report: Any) -> datetime | None:
    return to_utc(report.effectiveDateTime or report.issued)


def _report_alone() -> Records:
    raise FhirSkip("DiagnosticReport:no-pharmacogenomic-results")
