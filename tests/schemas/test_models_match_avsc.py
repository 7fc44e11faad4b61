"""The pydantic models and the .avsc files describe the same records: names, order, types,
optionality, enum symbols, defaults, and integer bounds that fit the Avro int/long."""

from __future__ import annotations

import datetime as dt
import types
import typing
from enum import StrEnum
from typing import Any

import pytest
from pydantic import AwareDatetime, BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from schemas import models
from schemas.catalog import catalog, full_name

INT_RANGE = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
SIMPLE = {"string": str, "bytes": bytes, "boolean": bool, "double": float, "float": float}


def _unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    metadata: list[Any] = []
    while typing.get_origin(annotation) is typing.Annotated:
        annotation, *extra = typing.get_args(annotation)
        metadata.extend(extra)
    return annotation, metadata


def _bounds(metadata: list[Any]) -> tuple[float, float]:
    lo, hi = float("-inf"), float("inf")
    for item in metadata:
        if isinstance(item, FieldInfo):
            sub_lo, sub_hi = _bounds(item.metadata)
            lo, hi = max(lo, sub_lo), min(hi, sub_hi)
        for attr, is_lower in (("ge", True), ("gt", True), ("le", False), ("lt", False)):
            value = getattr(item, attr, None)
            if value is not None:
                lo, hi = (max(lo, value), hi) if is_lower else (lo, min(hi, value))
    return lo, hi


def compare(avro: Any, annotation: Any, metadata: list[Any], path: str, named: dict) -> list[str]:
    """Mismatches between an Avro type and a Python annotation, each with its path."""
    inner, more = _unwrap(annotation)
    metadata = metadata + more
    if isinstance(avro, str) and full_name(avro) in named:
        avro = named[full_name(avro)]
    if isinstance(avro, list):
        args = typing.get_args(inner)
        if typing.get_origin(inner) not in (typing.Union, types.UnionType) or type(None) not in args:
            return [f"{path}: Avro {avro} is optional, model type {inner} is not"]
        rest = [a for a in args if a is not type(None)]
        return compare(avro[1], rest[0], metadata, path, named)
    if typing.get_origin(inner) in (typing.Union, types.UnionType):
        return [f"{path}: model type is optional, Avro type {avro} is not"]
    logical = avro.get("logicalType") if isinstance(avro, dict) else None
    if logical == "timestamp-millis":
        ok = inner in (AwareDatetime, dt.datetime)
        return [] if ok else [f"{path}: timestamp-millis needs a datetime, model has {inner}"]
    if logical == "date":
        return [] if inner is dt.date else [f"{path}: date needs datetime.date, model has {inner}"]
    kind = avro if isinstance(avro, str) else avro["type"]
    if kind in SIMPLE:
        return [] if inner is SIMPLE[kind] else [f"{path}: Avro {kind} vs model {inner}"]
    if kind in INT_RANGE:
        if inner is not int:
            return [f"{path}: Avro {kind} vs model {inner}"]
        lo, hi = _bounds(metadata)
        alo, ahi = INT_RANGE[kind]
        ok = alo <= lo and hi <= ahi
        return [] if ok else [f"{path}: model bounds [{lo}, {hi}] do not fit Avro {kind}"]
    if kind == "enum":
        named[full_name(avro["name"])] = avro
        if not (isinstance(inner, type) and issubclass(inner, StrEnum)):
            return [f"{path}: Avro enum {avro['name']} vs model {inner}"]
        problems = []
        if inner.__name__ != avro["name"]:
            problems.append(f"{path}: enum named {avro['name']} in Avro, {inner.__name__} in model")
        if [e.value for e in inner] != avro["symbols"] or [e.name for e in inner] != avro["symbols"]:
            problems.append(f"{path}: enum symbols {avro['symbols']} vs {[e.value for e in inner]}")
        return problems
    if kind == "array":
        if typing.get_origin(inner) is not list:
            return [f"{path}: Avro array vs model {inner}"]
        return compare(avro["items"], typing.get_args(inner)[0], [], path + "[]", named)
    if kind == "map":
        if typing.get_origin(inner) is not dict or typing.get_args(inner)[0] is not str:
            return [f"{path}: Avro map vs model {inner}"]
        return compare(avro["values"], typing.get_args(inner)[1], [], path + "{}", named)
    if kind == "record":
        if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
            return [f"{path}: Avro record {avro['name']} vs model {inner}"]
        return compare_record(avro, inner, path, named)
    return [f"{path}: unhandled Avro type {avro}"]


def compare_record(schema: dict, model: type[BaseModel], path: str, named: dict) -> list[str]:
    named[full_name(schema["name"])] = schema
    problems = []
    if model.__name__ != schema["name"]:
        problems.append(f"{path}: record {schema['name']} vs model {model.__name__}")
    avro_names = [f["name"] for f in schema["fields"]]
    if avro_names != list(model.model_fields):
        problems.append(f"{path}: fields {avro_names} vs model {list(model.model_fields)}")
    for field in schema["fields"]:
        info = model.model_fields.get(field["name"])
        where = f"{path}.{field['name']}"
        if info is None:
            continue
        problems += compare(field["type"], info.annotation, list(info.metadata), where, named)
        factory = info.default_factory
        default = info.default if factory is None else factory()  # type: ignore[call-arg]
        if "default" not in field:
            if default is not PydanticUndefined:
                problems.append(f"{where}: model default {default!r}, Avro has none")
        elif default is PydanticUndefined or default != field["default"]:
            shown = "none" if default is PydanticUndefined else repr(default)
            problems.append(f"{where}: Avro default {field['default']!r}, model {shown}")
    return problems


@pytest.mark.parametrize("name", catalog().record_names)
def test_model_matches_avsc(name: str) -> None:
    version = catalog().get(name)
    problems = compare_record(version.schema, models.MODELS[name], name, {})
    assert not problems, "\n".join(problems)


def test_one_model_per_record() -> None:
    assert sorted(models.MODELS) == sorted(catalog().record_names)


def test_drift_is_detected() -> None:
    """The comparison itself can fail: a model with a changed field is reported precisely."""

    class BiometricSample(models.BiometricSample):
        value: float | None = None  # type: ignore[assignment]

    problems = compare_record(catalog().get("BiometricSample").schema, BiometricSample, "B", {})
    assert problems == [
        "B.value: model type is optional, Avro type double is not",
        "B.value: model default None, Avro has none",
    ]


def test_every_enum_in_models_ends_with_unknown() -> None:
    enums = [
        v
        for v in vars(models).values()
        if isinstance(v, type) and issubclass(v, StrEnum) and v is not StrEnum
    ]
    assert enums
    for enum in enums:
        assert list(enum)[-1].value == "UNKNOWN", enum.__name__
