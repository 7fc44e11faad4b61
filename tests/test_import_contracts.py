"""The import contracts of pyproject.toml (run by ``make lint``) hold, and catch a planted breach.

Each test runs ``lint-imports`` on a copy of the packages in a temporary folder, so a planted
module never touches the tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("novamind", "schemas", "connectors", "workers")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

# One breach per contract: (module to plant, its source, the contract it breaks).
PLANTED = (
    ("workers/features/planted.py", "import confluent_kafka\n", "Pure stages import no Kafka"),
    ("workers/twin/planted.py", "from pymongo import MongoClient\n", "Pure stages import no Kafka"),
    ("workers/pipeline/planted.py", "import rocksdict\n", "Pure stages import no Kafka"),
    ("novamind/platform/planted.py", "from novamind.app.cli import build_parser\n", "Layers:"),
    ("novamind/platform/kafka_planted.py", "import workers.pipeline\n", "Layers:"),
    ("connectors/planted.py", "from novamind.app import status\n", "Layers:"),
    ("connectors/ehr/planted.py", "import workers.features\n", "Layers:"),
    ("schemas/planted.py", "import connectors.ehr\n", "Layers:"),
    ("novamind/app/demo/planted.py", "from novamind.app.commands import audit\n", "Nothing imports the CLI"),
)


def _tree(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}  # the copy, not the installed tree
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=tree, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_tree_keeps_every_contract(tmp_path: Path) -> None:
    result = _lint(_tree(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(("path", "source", "contract"), PLANTED, ids=[p for p, _, _ in PLANTED])
def test_a_planted_breach_fails_its_contract(tmp_path: Path, path: str, source: str, contract: str) -> None:
    tree = _tree(tmp_path)
    (tree / path).write_text(source)
    result = _lint(tree)
    assert result.returncode != 0, result.stdout
    broken = [line for line in result.stdout.splitlines() if line.endswith("BROKEN") or " BROKEN " in line]
    assert [line for line in broken if line.startswith(contract)], result.stdout
    assert path.removesuffix(".py").replace("/", ".") in result.stdout  # names the planted module
