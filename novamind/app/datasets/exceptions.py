"""Errors of the dataset export, under one root."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping


class DatasetError(Exception):
    """Root of every error raised by ``novamind.app.datasets``."""


class BadExportParameters(DatasetError):
    """The split, shift or quality parameters are invalid or leave a split empty."""


class EmptyDataset(DatasetError):
    """There is nothing to export (no patient-day with data, or none passed the gate)."""


class SourceError(DatasetError):
    """A source record or twin could not be read."""


class OutputExists(DatasetError):
    """The output directory already exists; exports never overwrite."""


class QualityGateFailed(DatasetError):
    """Too many patient-days are below the quality standards; ``failures`` names them."""

    def __init__(
        self, message: str, *, failures: Mapping[str, tuple[dt.date, ...]], passing_share: float
    ) -> None:
        super().__init__(message)
        self.failures = dict(failures)
        self.passing_share = passing_share
