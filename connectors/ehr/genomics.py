"""HL7 Genomics Reporting pharmacogenomic Observations -> one GeneticProfile per patient.

Accepted shapes: an Observation coded 53040-2 (effect on drug metabolism) or 53037-8 with a
phenotype in ``valueCodeableConcept``; or a therapeutic-implication Observation with a
53040-2 component. The gene comes from a 48018-6 component (HGNC coding); the diplotype from
a 84413-4 component or a ``derivedFrom`` genotype Observation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from connectors.ehr import codes
from connectors.ehr.clinical import (
    Deferred,
    MapContext,
    Origin,
    Records,
    codings,
    loinc_codes,
    observation_time,
)
from connectors.exceptions import FhirMappingError
from connectors.records import envelope, event_id

_STAR = re.compile(r"\*[\w.]+(?:x\d+)?/\*[\w.]+(?:x\d+)?")


def phenotype_symbol(text: str) -> str:
    """'Poor metabolizer' -> POOR_METABOLIZER; UNKNOWN when no known word is present."""
    low = text.lower()
    return next((sym for word, sym in codes.PHENOTYPE_WORDS if word in low), "UNKNOWN")


def _concept_text(concept: Any) -> str | None:
    if concept is None:
        return None
    parts = [c.display for c in codings(concept) if c.display] + [concept.text or ""]
    return " ".join(p for p in parts if p) or None


def _gene(concept: Any) -> str | None:
    for coding in codings(concept):
        if coding.display:
            return coding.display.split()[0].upper()
        if coding.code in codes.HGNC_SYMBOLS:
            return codes.HGNC_SYMBOLS[coding.code]
    return concept.text.split()[0].upper() if concept is not None and concept.text else None


def _diplotype(text: str | None) -> str | None:
    match = _STAR.search(text or "")
    return match.group(0) if match else None


@dataclass(slots=True)
class _Finding:
    obs: Any
    pid: str
    origin: Origin
    when: datetime
    gene: str
    phenotype: str
    diplotype: str | None
    derived: list[str]


@dataclass
class GenomicsCollector:
    """Collect PGx findings and genotype Observations; ``finish`` yields profiles per patient."""

    ctx: MapContext
    genotypes: dict[str, str] = field(default_factory=dict)
    genotype_origins: dict[str, list[Origin]] = field(default_factory=dict)
    findings: list[_Finding] = field(default_factory=list)

    def add(self, obs: Any, pid: str, origin: Origin, keys: list[str]) -> None:
        code_set = {c.code for c in codings(obs.code)}
        if codes.GENOTYPE_DISPLAY in code_set:
            text = _concept_text(obs.valueCodeableConcept) or obs.valueString
            for key in keys:
                self.genotypes[key] = text or ""
            self.genotype_origins.setdefault(pid, []).append(origin)
            return
        comps = {c: comp for comp in obs.component or () for c in loinc_codes(comp.code)}
        gene_comp = comps.get(codes.GENE_STUDIED)
        gene = _gene(gene_comp.valueCodeableConcept) if gene_comp else None
        if not gene:
            raise FhirMappingError("pharmacogenomic Observation lacks a 48018-6 gene component")
        pheno_holder = comps.get(codes.PGX_EFFECT_ON_METABOLISM, obs)
        text = _concept_text(pheno_holder.valueCodeableConcept) or pheno_holder.valueString
        if not text:
            raise FhirMappingError("pharmacogenomic Observation has no phenotype value")
        geno = comps.get(codes.GENOTYPE_DISPLAY)
        diplo = _diplotype(_concept_text(geno.valueCodeableConcept) or geno.valueString
                           if geno else text)
        self.findings.append(_Finding(
            obs, pid, origin, observation_time(obs), gene, phenotype_symbol(text), diplo,
            [d.reference for d in obs.derivedFrom or () if d.reference]))

    def finish(self) -> Iterator[Deferred]:
        """Yield one deferred GeneticProfile build per patient (latest finding per gene wins)."""
        groups: dict[str, list[_Finding]] = {}
        for finding in self.findings:
            groups.setdefault(finding.pid, []).append(finding)
        for pid, found in groups.items():
            members = [f.origin for f in found] + self.genotype_origins.pop(pid, [])
            yield Deferred(pid, members, partial(self._build, pid=pid, found=found))
        for pid, origins in self.genotype_origins.items():
            yield Deferred(pid, origins, _genotype_alone)

    def _build(self, pid: str, found: list[_Finding]) -> Records:
        latest: dict[str, _Finding] = {}
        for f in sorted(found, key=lambda f: f.when):
            latest[f.gene] = f
        phenotypes = []
        for gene in sorted(latest):
            f = latest[gene]
            diplo = f.diplotype or next(
                (d for d in (_diplotype(self.genotypes.get(r)) for r in f.derived) if d), None)
            phenotypes.append({"gene": gene, "phenotype": f.phenotype, "diplotype": diplo})
        when = max(f.when for f in found)
        ids = ",".join(sorted(str(f.obs.id) for f in found))
        rec = envelope(eid=event_id(self.ctx.source, "GeneticProfile", pid, ids), patient_id=pid,
                       event_time=when, received_time=self.ctx.received_time,
                       source=self.ctx.source)
        rec["phenotypes"] = phenotypes
        return [("GeneticProfile", rec)]


def _genotype_alone() -> Records:
    raise FhirMappingError("genotype Observation without a metaboliser phenotype finding")
