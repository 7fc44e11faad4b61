"""Fixtures of the twin tests: small factories returning contract-shaped dicts."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

import twin_factories  # noqa: E402


@pytest.fixture
def features_factory() -> Callable[..., dict[str, Any]]:
    return twin_factories.features


@pytest.fixture
def assessment_factory() -> Callable[..., dict[str, Any]]:
    return twin_factories.assessment


@pytest.fixture
def med_factory() -> Callable[..., dict[str, Any]]:
    return twin_factories.medication


@pytest.fixture
def genetic_factory() -> Callable[..., dict[str, Any]]:
    return twin_factories.genetic


@pytest.fixture
def year_factory() -> Callable[..., twin_factories.Events]:
    return twin_factories.year
