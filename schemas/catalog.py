"""The schema catalog: the .avsc files, their published versions and fingerprints.

``schemas/avsc/*.avsc`` hold one named type each (records, plus shared types such as
EncryptedText and Band referenced by name). A *top-level record* is one with published
versions under ``schemas/avsc/history/<RecordName>/v<N>.avsc``; those files are
self-contained (shared types inlined), frozen once published, and the newest must equal the
current ``.avsc`` expanded. Single-object framing names a version by the CRC-64-AVRO
fingerprint of its Parsing Canonical Form.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, cast

from fastavro import parse_schema
from fastavro.schema import to_parsing_canonical_form

from schemas.exceptions import CatalogError, UnknownRecord

NAMESPACE = "health.novamind.v1"
AVSC_DIR = Path(__file__).parent / "avsc"
HISTORY_DIR = AVSC_DIR / "history"
_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_EMPTY64 = 0xC15D213AA4D7A795


def _rabin_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (_EMPTY64 & -(fp & 1))
        table.append(fp)
    return tuple(table)


_TABLE = _rabin_table()


def crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO (Rabin) fingerprint of ``data`` as an unsigned 64-bit int."""
    fp = _EMPTY64
    for byte in data:
        fp = (fp >> 8) ^ _TABLE[(byte ^ fp) & 0xFF]
    return fp


def full_name(name: str, namespace: str = NAMESPACE) -> str:
    """Full name of a named type (``BiometricSample`` -> ``health.novamind.v1.BiometricSample``)."""
    return name if "." in name else f"{namespace}.{name}"


def short_name(name: str) -> str:
    """Record name without namespace."""
    return name.rsplit(".", 1)[-1]


def snake_case(name: str) -> str:
    """File stem of a record name (``TwinUpdate`` -> ``twin_update``)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@dataclass(frozen=True)
class SchemaVersion:
    """One published version of a record schema, parsed once."""

    name: str  # full name
    version: int
    schema: dict[str, Any] = field(repr=False)  # self-contained JSON
    canonical: str = field(repr=False)
    fingerprint: int
    parsed: dict[str, Any] = field(repr=False, compare=False)

    @property
    def header(self) -> bytes:
        """Single-object header: C3 01 + little-endian fingerprint."""
        return b"\xc3\x01" + self.fingerprint.to_bytes(8, "little")


def make_version(schema: dict[str, Any], version: int) -> SchemaVersion:
    """Parse ``schema`` once and compute its canonical form and fingerprint."""
    canonical = to_parsing_canonical_form(schema)
    return SchemaVersion(
        name=full_name(schema["name"], schema.get("namespace", NAMESPACE)),
        version=version,
        schema=schema,
        canonical=canonical,
        fingerprint=crc64_avro(canonical.encode()),
        parsed=cast(dict[str, Any], parse_schema(copy.deepcopy(schema), named_schemas={})),
    )


def load_named_types(directory: Path = AVSC_DIR) -> dict[str, dict[str, Any]]:
    """Every named type defined at the top of a ``*.avsc`` file, by full name."""
    types: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.avsc")):
        schema = json.loads(path.read_text())
        name = full_name(schema["name"], schema.get("namespace", NAMESPACE))
        if path.stem != snake_case(schema["name"]):
            raise CatalogError(f"{path.name} defines {name}; expected {snake_case(schema['name'])}")
        types[name] = schema
    return types


def expand(schema: dict[str, Any], types: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Self-contained copy of ``schema``: the first use of each named type is inlined."""
    defined: set[str] = set()

    def walk(node: Any, namespace: str) -> Any:
        if isinstance(node, str):
            if node in _PRIMITIVES:
                return node
            name = full_name(node, namespace)
            if name in defined:
                return name
            if name not in types:
                raise CatalogError(f"unknown type reference {node!r}")
            return walk(copy.deepcopy(types[name]), namespace)
        if isinstance(node, list):
            return [walk(branch, namespace) for branch in node]
        kind = node["type"]
        if kind in ("record", "enum", "fixed", "error"):
            namespace = node.get("namespace", namespace)
            defined.add(full_name(node["name"], namespace))
        if kind in ("record", "error"):
            node["fields"] = [{**fld, "type": walk(fld["type"], namespace)} for fld in node["fields"]]
        elif kind == "array":
            node["items"] = walk(node["items"], namespace)
        elif kind == "map":
            node["values"] = walk(node["values"], namespace)
        elif kind not in ("enum", "fixed", *_PRIMITIVES):
            node["type"] = walk(kind, namespace)  # {"type": <another type>} wrapper
        return node

    return walk(copy.deepcopy(schema), schema.get("namespace", NAMESPACE))


@dataclass(frozen=True)
class Catalog:
    """Current and historical versions of every top-level record."""

    current: dict[str, SchemaVersion]  # by full name
    versions: dict[str, tuple[SchemaVersion, ...]]  # by full name, oldest first
    by_fingerprint: dict[int, SchemaVersion]

    def get(self, record: str) -> SchemaVersion:
        """Current version of ``record`` (short or full name)."""
        try:
            return self.current[full_name(record)]
        except KeyError:
            raise UnknownRecord(f"no record named {record!r}") from None

    @property
    def record_names(self) -> tuple[str, ...]:
        """Short names of all top-level records, sorted."""
        return tuple(sorted(short_name(n) for n in self.current))


def history_versions(record: str, directory: Path = HISTORY_DIR) -> tuple[SchemaVersion, ...]:
    """Published versions of ``record`` (short name), oldest first."""
    paths = sorted((directory / record).glob("v*.avsc"), key=lambda p: int(p.stem[1:]))
    return tuple(make_version(json.loads(p.read_text()), int(p.stem[1:])) for p in paths)


def build_catalog(directory: Path = AVSC_DIR) -> Catalog:
    """Load, expand and fingerprint every record; check the newest version is the current one."""
    types = load_named_types(directory)
    history = directory / "history"
    records = sorted(p.name for p in history.iterdir() if p.is_dir())
    current: dict[str, SchemaVersion] = {}
    versions: dict[str, tuple[SchemaVersion, ...]] = {}
    by_fingerprint: dict[int, SchemaVersion] = {}
    for record in records:
        name = full_name(record)
        if name not in types:
            raise CatalogError(f"history/{record} has no {snake_case(record)}.avsc")
        published = history_versions(record, history)
        if not published:
            raise CatalogError(f"history/{record} holds no published version")
        latest = published[-1]
        now = make_version(expand(types[name], types), latest.version)
        if now.canonical != latest.canonical:
            raise CatalogError(
                f"{snake_case(record)}.avsc differs from history/{record}/v{latest.version}.avsc:"
                f" publish it as v{latest.version + 1}"
            )
        current[name] = now
        versions[name] = published
        for version in published:
            by_fingerprint[version.fingerprint] = version
    return Catalog(current=current, versions=versions, by_fingerprint=by_fingerprint)


@cache
def catalog() -> Catalog:
    """The package catalog, built on first use (no work at import time)."""
    return build_catalog()


def expanded_json(record: str, directory: Path = AVSC_DIR) -> str:
    """Self-contained JSON of the current ``<record>.avsc``, ready to publish as a version."""
    types = load_named_types(directory)
    return json.dumps(expand(types[full_name(record)], types), indent=2) + "\n"


if __name__ == "__main__":
    import sys

    sys.stdout.write(expanded_json(sys.argv[1]))
