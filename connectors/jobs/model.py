"""A connector job (where records come from, what its audit says) and what a run of it did."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from connectors.delivery import ImportSummary, MappedRecord


@dataclass
class Job:
    """One connector run: where records come from and what the audit says about it.

    ``records`` maps the input lazily, counting into the run's summary. ``commit`` runs only
    after Kafka acknowledged every record (the FHIR patient index, the sync cursor); ``close``
    releases the job's clients and returns a warning when closing lost something.
    """

    label: str
    actor: str
    system: str
    scopes: str
    routes: Mapping[str, str]
    records: Callable[[ImportSummary], Iterator[MappedRecord]]
    fraction: Callable[[], float | None] | None = None
    commit: Callable[[], None] | None = None
    free_text: str | None = None  # FHIR notes and narratives: "encrypted" or "dropped"
    close: Callable[[], str | None] | None = None
    identity: Callable[[str], str | None] | None = None  # FHIR: what a pseudonym was made of


@dataclass(frozen=True)
class Reporting:
    """Where a running job reports as it goes: each rejected item on its own line after
    ``prefix``, and with ``progress`` a throttled progress line (``connectors.delivery.Progress``)."""

    stream: TextIO
    prefix: str = ""
    progress: bool = True


@dataclass(frozen=True)
class JobResult:
    """What one job run did: the delivery counts and what the job adds to them.

    ``error`` says why a run stopped early or is incomplete (it is then not committed);
    ``warnings`` what went wrong after the records were safe (closing the patient index).
    """

    connector: str
    summary: ImportSummary
    audited: int
    free_text: str | None = None
    error: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        """Every record sent was acknowledged, nothing failed and no signal stopped the run."""
        return self.summary.complete and self.error is None

    @property
    def produced(self) -> int:
        """Records Kafka acknowledged, over all topics."""
        return sum(self.summary.acknowledged.values())

    @property
    def rejected(self) -> int:
        return len(self.summary.rejected)

    def as_dict(self) -> dict[str, Any]:
        """The JSON summary ``novamind connect`` prints."""
        out = self.summary.as_dict() | {"connector": self.connector, "audited": self.audited}
        if self.free_text is not None:
            out["free_text"] = self.free_text
        if self.error is not None:
            out["error"] = self.error
        return out
