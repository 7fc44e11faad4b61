"""BACKWARD compatibility: each published version reads data written by every older one."""

from __future__ import annotations

import io
from itertools import combinations
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.catalog import SchemaVersion, catalog, full_name, make_version
from schemas.codec import AvroCodec
from schemas.models import AssessmentResult, Instrument, PipelineAlert
from tests.schemas.strategies import for_schema

PROMOTIONS = {
    ("int", "long"),
    ("int", "float"),
    ("int", "double"),
    ("long", "float"),
    ("long", "double"),
    ("float", "double"),
    ("string", "bytes"),
    ("bytes", "string"),
}


def _kind(t: Any) -> str:
    if isinstance(t, list):
        return "union"
    return t if isinstance(t, str) else t["type"]


def backward_problems(old: SchemaVersion, new: SchemaVersion) -> list[str]:
    """Why ``new`` cannot read data written with ``old`` (empty when it can)."""
    label = f"{old.name.rsplit('.', 1)[-1]} v{old.version}->v{new.version}"
    writer_names: dict[str, Any] = {}
    reader_names: dict[str, Any] = {}

    def resolve(t: Any, named: dict[str, Any]) -> Any:
        if isinstance(t, str) and full_name(t) in named:
            return named[full_name(t)]
        if isinstance(t, dict) and t["type"] in ("record", "enum"):
            named[full_name(t["name"])] = t
        return t

    def check(writer: Any, reader: Any, path: str) -> list[str]:
        writer, reader = resolve(writer, writer_names), resolve(reader, reader_names)
        wk, rk = _kind(writer), _kind(reader)
        if wk == "union" or rk == "union":
            wbranches = writer if wk == "union" else [writer]
            rbranches = reader if rk == "union" else [reader]
            return [
                p
                for wb in wbranches
                if all(check(wb, rb, path) for rb in rbranches)
                for p in [f"{path}: writer branch {_kind(wb)} matches no reader branch"]
            ]
        if wk != rk and (wk, rk) not in PROMOTIONS:
            return [f"{path}: {wk} cannot be read as {rk}"]
        if rk == "enum":
            missing = set(writer["symbols"]) - set(reader["symbols"])
            if missing and "default" not in reader:
                return [f"{path}: symbols {sorted(missing)} removed and no enum default"]
        if rk == "array":
            return check(writer["items"], reader["items"], path + "[]")
        if rk == "map":
            return check(writer["values"], reader["values"], path + "{}")
        if rk == "record":
            wfields = {f["name"]: f for f in writer["fields"]}
            problems = []
            for field in reader["fields"]:
                where = f"{path}.{field['name']}"
                if field["name"] in wfields:
                    problems += check(wfields[field["name"]]["type"], field["type"], where)
                elif "default" not in field:
                    problems.append(f"{where}: added without a default")
            return problems
        return []

    return [f"{label}: {p}" for p in check(old.schema, new.schema, "")]


def version_pairs() -> list[tuple[SchemaVersion, SchemaVersion]]:
    return [pair for versions in catalog().versions.values() for pair in combinations(versions, 2)]


def test_some_record_has_evolved() -> None:
    assert version_pairs(), "need at least one record with two published versions"


@pytest.mark.parametrize("old,new", version_pairs(), ids=lambda v: f"{v.name}-v{v.version}")
def test_newer_reads_older_statically(old: SchemaVersion, new: SchemaVersion) -> None:
    assert backward_problems(old, new) == []


@pytest.mark.parametrize("old,new", version_pairs(), ids=lambda v: f"{v.name}-v{v.version}")
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_newer_reads_older_data(old: SchemaVersion, new: SchemaVersion, data: st.DataObject) -> None:
    record = data.draw(for_schema(old.schema))
    out = io.BytesIO()
    schemaless_writer(out, old.parsed, record)
    out.seek(0)
    decoded: Any = schemaless_reader(out, old.parsed, new.parsed)
    new_fields = {f["name"]: f for f in new.schema["fields"]}
    for name, value in record.items():
        if name in new_fields:
            assert decoded[name] == value, name
    for name, field in new_fields.items():
        if name not in record:
            assert decoded[name] == field["default"], name


def test_codec_decodes_v1_pipeline_alert_into_the_current_model() -> None:
    v1 = catalog().versions["health.novamind.v1.PipelineAlert"][0]
    record = {
        "event_id": "pa",
        "event_time": 0,
        "schema_version": 1,
        "component": "workers",
        "step": "decode",
        "severity": "WARNING",
        "message": "lag",
    }
    out = io.BytesIO()
    out.write(v1.header)
    schemaless_writer(out, v1.parsed, record)
    model = AvroCodec().decode(out.getvalue())
    assert isinstance(model, PipelineAlert)
    assert model.details == {} and model.schema_version == 1


def _evolve(base: SchemaVersion, fields: list[dict[str, Any]]) -> SchemaVersion:
    schema = {**base.schema, "fields": base.schema["fields"] + fields}
    parse_schema(schema, named_schemas={})
    return make_version(schema, base.version + 1)


def test_unsafe_changes_are_reported_precisely() -> None:
    base = catalog().get("SymptomReport")
    no_default = _evolve(base, [{"name": "mood", "type": "int", "doc": "x"}])
    assert backward_problems(base, no_default) == ["SymptomReport v1->v2: .mood: added without a default"]
    retyped = make_version(
        {
            **base.schema,
            "fields": [
                {**f, "type": "string"} if f["name"] == "severity" else f for f in base.schema["fields"]
            ],
        },
        2,
    )
    assert backward_problems(base, retyped) == [
        "SymptomReport v1->v2: .severity: int cannot be read as string"
    ]
    safe = _evolve(base, [{"name": "mood", "type": ["null", "int"], "default": None, "doc": "x"}])
    assert backward_problems(base, safe) == []


def _assessment_result(instrument: str, items: list[int], *, schema_version: int) -> dict[str, Any]:
    return {
        "event_id": "ar",
        "patient_id": "p_" + "0" * 32,
        "event_time": 0,
        "received_time": 0,
        "source": "fhir:ehr",
        "schema_version": schema_version,
        "submission_id": "s",
        "instrument": instrument,
        "item_responses": items,
        "total": sum(items),
        "band": "UNKNOWN" if instrument == "PHQ9_ITEM9" else "MILD",
        "item9_positive": items[-1] >= 1,
        "loinc_total": "44260-8" if instrument == "PHQ9_ITEM9" else "44261-6",
    }


def test_a_v1_reader_reads_an_item9_screen_as_an_unknown_instrument() -> None:
    v1, v2 = catalog().versions["health.novamind.v1.AssessmentResult"]
    out = io.BytesIO()
    schemaless_writer(out, v2.parsed, _assessment_result("PHQ9_ITEM9", [2], schema_version=2))
    out.seek(0)
    old: Any = schemaless_reader(out, v2.parsed, v1.parsed)
    assert (old["instrument"], old["item9_positive"], old["loinc_total"]) == ("UNKNOWN", True, "44260-8")


def test_codec_decodes_a_v1_assessment_result_into_the_current_model() -> None:
    v1 = catalog().versions["health.novamind.v1.AssessmentResult"][0]
    out = io.BytesIO()
    out.write(v1.header)
    schemaless_writer(out, v1.parsed, _assessment_result("PHQ9", [1] * 8 + [0], schema_version=1))
    model = AvroCodec().decode(out.getvalue())
    assert isinstance(model, AssessmentResult)
    assert (model.instrument, model.total, model.schema_version) == (Instrument.PHQ9, 8, 1)
    assert AssessmentResult.model_fields["schema_version"].default == 2


def test_a_v1_assessment_result_read_without_logical_types_resolves_to_the_current_schema() -> None:
    v1 = catalog().versions["health.novamind.v1.AssessmentResult"][0]
    out = io.BytesIO()
    out.write(v1.header)
    written = {**_assessment_result("PHQ9", [1] * 8 + [0], schema_version=1), "event_time": 1_700_000_000_123}
    schemaless_writer(out, v1.parsed, written)
    codec = AvroCodec()
    _, plain = codec.decode_dict(out.getvalue(), logical=False)
    _, converted = codec.decode_dict(out.getvalue())
    assert plain["event_time"] == 1_700_000_000_123
    assert converted["event_time"].timestamp() * 1000 == 1_700_000_000_123
    assert {k: v for k, v in plain.items() if not k.endswith("_time")} == {
        k: v for k, v in converted.items() if not k.endswith("_time")
    }
