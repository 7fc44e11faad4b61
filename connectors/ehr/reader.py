"""Read FHIR resources as raw dicts from Bundles (.json) and bulk-export NDJSON files.

Nothing is validated here: the mapper decides which resources deserve a model.
Unreadable files and lines are yielded as ``RawResource`` with ``error`` set, so one bad
file never stops the rest.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BUNDLE_TYPES = frozenset({"transaction", "collection", "searchset", "batch", "document",
                          "transaction-response", "batch-response", "history", "message"})


@dataclass(frozen=True, slots=True)
class RawResource:
    """One resource dict with where it came from (``file#Bundle.entry[3].resource``)."""

    location: str
    data: dict[str, Any] | None
    full_url: str | None = None
    error: str | None = None


def iter_bundle(bundle: dict[str, Any], location: str) -> Iterator[RawResource]:
    """Yield the entries of a Bundle dict (nested Bundles are flattened)."""
    for i, entry in enumerate(bundle.get("entry") or ()):
        where = f"{location}#Bundle.entry[{i}].resource"
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            yield RawResource(where, None, error="entry has no resource object")
        elif resource.get("resourceType") == "Bundle":
            yield from iter_bundle(resource, where)
        else:
            yield RawResource(where, resource, entry.get("fullUrl"))


def _iter_json(path: Path) -> Iterator[RawResource]:
    try:
        with path.open("rb") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        yield RawResource(str(path), None, error=f"unreadable JSON: {exc}")
        return
    if not isinstance(data, dict) or "resourceType" not in data:
        yield RawResource(str(path), None, error="not a FHIR resource (no resourceType)")
    elif data["resourceType"] == "Bundle":
        if data.get("type") not in BUNDLE_TYPES:
            reason = f"unsupported Bundle.type {data.get('type')!r}"
            yield RawResource(str(path), None, error=reason)
            return
        yield from iter_bundle(data, str(path))
    else:
        yield RawResource(str(path), data)


def _iter_ndjson(path: Path) -> Iterator[RawResource]:
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                data = json.loads(line)
            except ValueError as exc:
                yield RawResource(where, None, error=f"unreadable JSON line: {exc}")
                continue
            if not isinstance(data, dict):
                yield RawResource(where, None, error="NDJSON line is not a JSON object")
            else:
                yield RawResource(where, data)


def _order(path: Path) -> tuple[int, str]:
    # Bulk exports name files by type; read Patient first so subjects resolve early.
    return (0 if path.name.lower().startswith("patient") else 1, path.name)


def iter_resources(path: str | Path) -> Iterator[RawResource]:
    """Yield resources from a Bundle/resource ``.json``, an ``.ndjson`` file, or a directory."""
    root = Path(path)
    if root.is_dir():
        files = sorted((p for p in root.rglob("*") if p.suffix in {".json", ".ndjson"}), key=_order)
    else:
        files = [root]
    for file in files:
        if file.suffix == ".ndjson":
            yield from _iter_ndjson(file)
        else:
            yield from _iter_json(file)
