"""FHIR R4 EHR connector: bundle/NDJSON reading, resource mapping, REST incremental sync."""

from connectors.ehr.mapping import FhirMapper, MappedRecord, MappingSummary, Rejection
from connectors.ehr.reader import RawResource, iter_resources

__all__ = [
    "FhirMapper",
    "MappedRecord",
    "MappingSummary",
    "RawResource",
    "Rejection",
    "iter_resources",
]
