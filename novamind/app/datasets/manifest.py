"""The export manifest: what was exported, how, and the hashes that prove the files.

``manifest.json`` holds the format version, export id, creation time, the Avro schema, one
entry per split file (path, rows, subjects, bytes, SHA-256), the quality summary, the
parameters and the de-identification applied. It never holds the re-keying key, a pseudonym
or a real date.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

MANIFEST_NAME = "manifest.json"
FORMAT = "novamind-training-dataset"
FORMAT_VERSION = 1
_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_entry(path: Path, *, rows: int, subjects: int) -> dict[str, Any]:
    """The manifest entry of one written split file (relative path, counts, size, hash)."""
    return {
        "path": path.name,
        "rows": rows,
        "subjects": subjects,
        "bytes": path.stat().st_size,
        "sha256": sha256_file(path),
    }


def build_manifest(
    *,
    export_id: str,
    created_at: str,
    schema: Mapping[str, Any],
    files: Mapping[str, Mapping[str, Any]],
    quality: Mapping[str, Any],
    parameters: Mapping[str, Any],
    counts: Mapping[str, Any],
    deidentification: Mapping[str, Any],
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "export_id": export_id,
        "created_at": created_at,
        "schema": dict(schema),
        "files": {name: dict(entry) for name, entry in files.items()},
        "counts": dict(counts),
        "quality": dict(quality),
        "parameters": dict(parameters),
        "deidentification": dict(deidentification),
    }


def write_manifest(directory: Path, manifest: Mapping[str, Any]) -> Path:
    path = directory / MANIFEST_NAME
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def verify(directory: Path) -> list[str]:
    """Problems found checking every file of ``directory``'s manifest (empty when it holds)."""
    manifest = json.loads((directory / MANIFEST_NAME).read_text(encoding="utf-8"))
    problems = []
    for split, entry in sorted(manifest["files"].items()):
        path = directory / entry["path"]
        if path.name != entry["path"] or not path.is_file():
            problems.append(f"{split}: {entry['path']} is missing")
            continue
        if path.stat().st_size != entry["bytes"]:
            problems.append(
                f"{split}: {entry['path']} has {path.stat().st_size} bytes, manifest {entry['bytes']}"
            )
        actual = sha256_file(path)
        if actual != entry["sha256"]:
            problems.append(
                f"{split}: {entry['path']} SHA-256 {actual} differs from manifest {entry['sha256']}"
            )
    return problems
