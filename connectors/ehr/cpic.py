"""Diplotype -> CPIC metaboliser phenotype for CYP2D6 (activity score) and CYP2C19 (table).

Sources are listed in ``connectors/ehr/cpic/README.md``. Star alleles are read from genotype
text as reported by labs and the genomics-reporting IG ("CYP2D6 *4/*4", "CYP2C19*2/*2",
"CYP2D6*7.001 / CYP2D6*1.001" - PharmVar sub-alleles count as their core allele).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

_STAR = re.compile(r"\*(\d+)(?:\.\d+)?[A-WYZ]?(?:\s*[xX\u00d7]\s*(\d+|[nN]|≥\d+))?")
_CPIC_TERMS = {
    "Ultrarapid Metabolizer": "ULTRARAPID_METABOLIZER",
    "Rapid Metabolizer": "RAPID_METABOLIZER",
    "Normal Metabolizer": "NORMAL_METABOLIZER",
    "Intermediate Metabolizer": "INTERMEDIATE_METABOLIZER",
    "Likely Intermediate Metabolizer": "INTERMEDIATE_METABOLIZER",  # no "likely" in the enum
    "Poor Metabolizer": "POOR_METABOLIZER",
    "Likely Poor Metabolizer": "POOR_METABOLIZER",
    "Indeterminate": "INDETERMINATE",
}
# CYP2D6 allele activity values (CPIC); alleles of unknown function ("n/a") are left out.
CYP2D6_ACTIVITY = {
    "*1": "1.0", "*1x2": "2.0", "*1x≥3": "≥3.0", "*2": "1.0", "*2x2": "2.0", "*2x≥3": "≥3.0",
    "*3": "0.0", "*3x2": "0.0", "*4": "0.0", "*4x2": "0.0", "*4x≥3": "0.0", "*5": "0.0",
    "*6": "0.0", "*6x2": "0.0", "*7": "0.0", "*8": "0.0", "*9": "0.25", "*9x2": "0.5",
    "*10": "0.25", "*10x2": "0.5", "*11": "0.0", "*12": "0.0", "*13": "0.0", "*14": "0.5",
    "*15": "0.0", "*17": "0.5", "*17x2": "1.0", "*18": "0.0", "*19": "0.0", "*20": "0.0",
    "*21": "0.0", "*27": "1.0", "*29": "0.5", "*29x2": "1.0", "*31": "0.0", "*32": "0.25",
    "*33": "1.0", "*34": "1.0", "*35": "1.0", "*35x2": "2.0", "*36": "0.0", "*36x2": "0.0",
    "*38": "0.0", "*39": "1.0", "*40": "0.0", "*41": "0.25", "*41x2": "0.5", "*41x3": "0.75",
    "*42": "0.0", "*44": "0.0", "*45": "1.0", "*45x2": "2.0", "*46": "1.0", "*47": "0.0",
    "*48": "1.0", "*49": "0.5", "*50": "0.5", "*51": "0.0", "*52": "0.25", "*53": "1.0",
    "*54": "0.5", "*55": "0.5", "*56": "0.0", "*59": "0.5", "*60": "0.0", "*62": "0.0",
    "*68": "0.0", "*69": "0.0", "*81": "0.0", "*91": "0.25", "*92": "0.0", "*96": "0.0",
    "*99": "0.0", "*100": "0.0", "*101": "0.0", "*109": "0.25", "*114": "0.0", "*119": "0.25",
    "*120": "0.0", "*124": "0.0", "*129": "0.0", "*132": "0.25", "*143": "0.0", "*144": "0.0",
    "*156": "0.0", "*161": "0.0",
}
CPIC_GENES = frozenset({"CYP2D6", "CYP2C19"})


def star_alleles(text: str | None) -> list[str]:
    """Star alleles in genotype text, e.g. ``["*4", "*1x2"]``; copy number kept as ``xN``."""
    found = []
    for match in _STAR.finditer(text or ""):
        copies = match.group(2)
        found.append(f"*{match.group(1)}" + (f"x{copies}" if copies else ""))
    return found


def diplotype(text: str | None) -> str | None:
    """``*A/*B`` when the text names exactly two star alleles, ordered as CPIC tables are."""
    alleles = star_alleles(text)
    if len(alleles) != 2:
        return None
    return "/".join(sorted(alleles, key=_allele_order))


def _allele_order(allele: str) -> tuple[int, str]:
    number = re.match(r"\*(\d+)", allele)
    return (int(number.group(1)) if number else 0, allele)


def _activity(allele: str) -> float | None:
    """Activity value of one CYP2D6 allele (with copy number); None when CPIC gives none."""
    if allele in CYP2D6_ACTIVITY:
        return float(CYP2D6_ACTIVITY[allele].lstrip("≥"))
    base, _, copies = allele.partition("x")
    count = copies.lstrip("≥")
    if not (copies and base in CYP2D6_ACTIVITY and count.isdigit()):
        return None
    if float(CYP2D6_ACTIVITY[base]) == 0:
        return 0.0  # copies of a no-function allele
    wider = f"{base}x≥3"
    if int(count) >= 3 and wider in CYP2D6_ACTIVITY:
        return float(CYP2D6_ACTIVITY[wider].lstrip("≥"))
    return None


def cyp2d6_phenotype(diplo: str) -> str:
    """CPIC phenotype from the CYP2D6 activity score of a diplotype."""
    scores = [_activity(a) for a in diplo.split("/")]
    if any(s is None for s in scores):
        return "INDETERMINATE"
    score = sum(s for s in scores if s is not None)
    if score == 0:
        return "POOR_METABOLIZER"
    if score < 1.25:
        return "INTERMEDIATE_METABOLIZER"
    if score <= 2.25:
        return "NORMAL_METABOLIZER"
    return "ULTRARAPID_METABOLIZER"


@cache
def _cyp2c19() -> dict[str, str]:
    table = json.loads((Path(__file__).parent / "cpic" / "CYP2C19.json").read_text(encoding="utf-8"))
    return dict(table["diplotypes"])


def cyp2c19_phenotype(diplo: str) -> str:
    """CPIC phenotype of a CYP2C19 diplotype from the CPIC table (INDETERMINATE if absent)."""
    table = _cyp2c19()
    first, _, second = diplo.partition("/")
    term = table.get(diplo) or table.get(f"{second}/{first}")
    return _CPIC_TERMS.get(term or "Indeterminate", "INDETERMINATE")


def phenotype(gene: str, diplo: str | None) -> str | None:
    """The CPIC phenotype for CYP2D6 / CYP2C19 diplotypes; None for other genes or no diplotype."""
    if diplo is None or gene not in CPIC_GENES:
        return None
    return cyp2d6_phenotype(diplo) if gene == "CYP2D6" else cyp2c19_phenotype(diplo)
