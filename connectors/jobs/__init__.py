"""Connector jobs as library functions: import vendor files or sync a FHIR server to Kafka.

``run_fhir_files``, ``run_fhir_sync`` and ``run_wearable`` (Fitbit, Apple Health, Open mHealth,
named by :class:`WearableFormat`) each return a :class:`JobResult`; ``novamind connect``, the demo, the
benchmarks and the tests all call them. Modules: ``model`` (the job and its result),
``audit`` (the extraction audit), ``keys``, ``fhir`` (files, REST sync and its cursor),
``wearables`` (wearer and device binding) and ``run`` (the send loop around them).
"""

from connectors.jobs.model import Job, JobResult, Reporting
from connectors.jobs.run import run_fhir_files, run_fhir_sync, run_job, run_wearable
from connectors.wearables import WearableFormat

__all__ = [
    "Job",
    "JobResult",
    "Reporting",
    "WearableFormat",
    "run_fhir_files",
    "run_fhir_sync",
    "run_job",
    "run_wearable",
]
