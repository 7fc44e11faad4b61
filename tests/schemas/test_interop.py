"""Bytes written by our codec read with the Apache ``avro`` reference library, and back."""

from __future__ import annotations

import io
import json

import avro.io
import avro.schema
import pytest

from schemas.catalog import catalog
from schemas.codec import AvroCodec
from tests.schemas.conftest import sample_records

RECORDS = sorted(sample_records())


def reference_schema(name: str) -> avro.schema.Schema:
    return avro.schema.parse(json.dumps(catalog().get(name).schema))


@pytest.mark.parametrize("name", RECORDS)
def test_apache_avro_reads_our_bytes(name: str) -> None:
    codec = AvroCodec()
    data = codec.encode(sample_records()[name])
    assert data[:2] == b"\xc3\x01"
    reader = avro.io.DatumReader(reference_schema(name))
    decoded = reader.read(avro.io.BinaryDecoder(io.BytesIO(data[10:])))
    assert decoded == codec.decode_dict(data)[1]


@pytest.mark.parametrize("name", RECORDS)
def test_we_read_apache_avro_bytes(name: str) -> None:
    record = sample_records()[name]
    out = io.BytesIO()
    avro.io.DatumWriter(reference_schema(name)).write(record.model_dump(), avro.io.BinaryEncoder(out))
    framed = catalog().get(name).header + out.getvalue()
    assert AvroCodec().decode(framed) == record
    assert framed == AvroCodec().encode(record)  # byte-identical encodings
