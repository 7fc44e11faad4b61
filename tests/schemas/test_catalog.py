"""The .avsc files follow the contract conventions and the catalog guards published versions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import avro.schema
import pytest
from fastavro.schema import fingerprint as fastavro_fingerprint
from fastavro.schema import to_parsing_canonical_form

from schemas.catalog import (
    AVSC_DIR,
    NAMESPACE,
    build_catalog,
    catalog,
    crc64_avro,
    expanded_json,
    load_named_types,
)
from schemas.exceptions import CatalogError, UnknownRecord

ENVELOPE = ["event_id", "patient_id", "event_time", "received_time", "source", "schema_version"]
NON_PATIENT = {"DeadLetter", "AuditEvent", "PipelineAlert"}
SPEC_RECORDS = {
    "ClinicalEvent",
    "GeneticProfile",
    "Demographics",
    "BiometricSample",
    "SymptomReport",
    "AssessmentSubmission",
    "AssessmentResult",
    "MedicationEvent",
    "PatientDailyFeatures",
    "TwinUpdate",
    "TwinAlert",
    "TwinRestore",
    "DeadLetter",
    "AuditEvent",
    "PipelineAlert",
}


def walk(node: Any, path: str):
    """Yield (path, named-or-field node) for every record, enum and field."""
    if isinstance(node, list):
        for i, branch in enumerate(node):
            yield from walk(branch, f"{path}[{i}]")
    elif isinstance(node, dict):
        if node["type"] in ("record", "enum"):
            yield path, node
        if node["type"] == "record":
            for field in node["fields"]:
                yield f"{path}.{field['name']}", field
                yield from walk(field["type"], f"{path}.{field['name']}")
        elif node["type"] == "array":
            yield from walk(node["items"], path + "[]")
        elif node["type"] == "map":
            yield from walk(node["values"], path + "{}")


def all_schemas() -> list[tuple[str, dict]]:
    current = [(f"{v.name} (current)", v.schema) for v in catalog().current.values()]
    history = [(f"{v.name} v{v.version}", v.schema) for vs in catalog().versions.values() for v in vs]
    return current + history


def test_every_spec_record_is_in_the_catalog() -> None:
    assert set(catalog().record_names) == SPEC_RECORDS


@pytest.mark.parametrize(("label", "schema"), all_schemas(), ids=lambda x: x if isinstance(x, str) else "")
def test_conventions(label: str, schema: dict) -> None:
    problems = []
    for path, node in walk(schema, schema["name"]):
        if not node.get("doc"):
            problems.append(f"{path}: no doc")
        if node.get("type") == "enum" and (
            node["symbols"][-1] != "UNKNOWN" or node.get("default") != "UNKNOWN"
        ):
            problems.append(f"{path}: enum must end with and default to UNKNOWN")
        if node.get("type") in ("record", "enum") and node.get("namespace", NAMESPACE) != NAMESPACE:
            problems.append(f"{path}: namespace")
        ftype = node.get("type")
        if ("name" in node and isinstance(ftype, list)) and (
            ftype[0] != "null" or len(ftype) != 2 or node.get("default", "x") is not None
        ):
            problems.append(f"{path}: optional must be ['null', T] with default null")
        if path.endswith(("_time", "first_seen_time")) and ftype != {
            "type": "long",
            "logicalType": "timestamp-millis",
        }:
            problems.append(f"{path}: timestamps are long timestamp-millis")
    names = [f["name"] for f in schema["fields"]]
    if schema["name"] not in NON_PATIENT and names[:6] != ENVELOPE:
        problems.append(f"envelope fields must come first, got {names[:6]}")
    assert not problems, f"{label}:\n" + "\n".join(problems)


def test_crc64_avro_reference_vector() -> None:
    # Avro's reference: parsingFingerprint64("null") == 7195948357588979594
    assert crc64_avro(b'"null"') == 7195948357588979594


def test_fingerprints_agree_with_fastavro_and_apache_avro() -> None:
    for version in catalog().by_fingerprint.values():
        little = version.fingerprint.to_bytes(8, "little")
        assert fastavro_fingerprint(version.canonical, "CRC-64-AVRO") == little.hex()
        # Apache avro (python) 1.12 renders logical types as {"type": "long"} in its canonical
        # form, unlike the spec and Java ("long"); so give it the canonical form itself.
        parsed = avro.schema.parse(version.canonical)
        assert parsed.fingerprint("CRC-64-AVRO") == little
        assert version.header == b"\xc3\x01" + little


def test_history_files_are_self_contained() -> None:
    for versions in catalog().versions.values():
        for version in versions:
            assert to_parsing_canonical_form(version.schema) == version.canonical


def test_unknown_record_is_typed() -> None:
    with pytest.raises(UnknownRecord):
        catalog().get("NoSuchRecord")


@pytest.fixture
def avsc_copy(tmp_path: Path) -> Path:
    target = tmp_path / "avsc"
    shutil.copytree(AVSC_DIR, target)
    return target


def test_changing_a_schema_without_publishing_a_version_fails(avsc_copy: Path) -> None:
    path = avsc_copy / "biometric_sample.avsc"
    schema = json.loads(path.read_text())
    schema["fields"].append({"name": "x", "type": "int", "default": 0, "doc": "new"})
    path.write_text(json.dumps(schema))
    with pytest.raises(CatalogError, match="publish it as v2"):
        build_catalog(avsc_copy)


def test_changing_a_shared_type_without_publishing_fails(avsc_copy: Path) -> None:
    path = avsc_copy / "band.avsc"
    schema = json.loads(path.read_text())
    schema["symbols"].insert(0, "NONE")
    path.write_text(json.dumps(schema))
    with pytest.raises(CatalogError, match="differs from history"):
        build_catalog(avsc_copy)


def test_file_name_is_snake_case_of_record(avsc_copy: Path) -> None:
    (avsc_copy / "band.avsc").rename(avsc_copy / "bands.avsc")
    with pytest.raises(CatalogError, match="expected band"):
        load_named_types(avsc_copy)


@pytest.mark.parametrize("name", catalog().record_names)
def test_publish_helper_reproduces_the_newest_version(name: str) -> None:
    newest = max((AVSC_DIR / "history" / name).glob("v*.avsc"), key=lambda p: int(p.stem[1:]))
    assert expanded_json(name) == newest.read_text()
