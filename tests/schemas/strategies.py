"""Hypothesis strategies derived from Avro schemas (dict level, any record)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import strategies as st

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
NS = "health.novamind.v1"


def _millis_datetimes() -> st.SearchStrategy[dt.datetime]:
    return st.integers(min_value=0, max_value=253402300799999).map(
        lambda ms: dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=ms)
    )


def for_schema(schema: Any, named: dict[str, Any] | None = None) -> st.SearchStrategy[Any]:
    """Values valid for ``schema`` that survive a round trip unchanged (no NaN)."""
    named = {} if named is None else named
    if isinstance(schema, list):
        return st.one_of(*(for_schema(branch, named) for branch in schema))
    if isinstance(schema, str):
        if schema in named:
            return for_schema(named[schema], named)
        if f"{NS}.{schema}" in named:
            return for_schema(named[f"{NS}.{schema}"], named)
        return {
            "null": st.none(),
            "boolean": st.booleans(),
            "int": st.integers(*INT32),
            "long": st.integers(*INT64),
            "float": st.floats(width=32, allow_nan=False),
            "double": st.floats(allow_nan=False),
            "bytes": st.binary(max_size=64),
            "string": st.text(max_size=32),
        }[schema]
    kind = schema["type"]
    logical = schema.get("logicalType")
    if logical == "timestamp-millis":
        return _millis_datetimes()
    if logical == "date":
        return st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31))
    if kind == "record":
        name = schema["name"] if "." in schema["name"] else f"{schema.get('namespace', NS)}.{schema['name']}"
        named[name] = schema
        return st.fixed_dictionaries({f["name"]: for_schema(f["type"], named) for f in schema["fields"]})
    if kind == "enum":
        named[f"{schema.get('namespace', NS)}.{schema['name']}"] = schema
        return st.sampled_from(schema["symbols"])
    if kind == "array":
        return st.lists(for_schema(schema["items"], named), max_size=4)
    if kind == "map":
        return st.dictionaries(st.text(max_size=8), for_schema(schema["values"], named), max_size=4)
    return for_schema(kind, named)
