"""Serialized twin state: round trip, integrity, allow-list."""

from __future__ import annotations

import io
import pickle
import zlib

import pytest

from workers.twin import serialize
from workers.twin.exceptions import StateDecodeError
from workers.twin.state import apply_daily_features, new_twin


def _state(features_factory, days=30):
    state = new_twin("p_" + "cd" * 16)
    for t in range(days):
        state, _ = apply_daily_features(state, features_factory(t, 2 + t % 3))
    return state


def test_round_trip_is_a_fixed_point(features_factory):
    blob = serialize.serialize(_state(features_factory))
    again = serialize.serialize(serialize.deserialize(blob))
    assert again == blob


def test_corruption_is_detected(features_factory):
    blob = bytearray(serialize.serialize(_state(features_factory)))
    blob[-5] ^= 0xFF
    with pytest.raises(StateDecodeError, match="checksum"):
        serialize.deserialize(bytes(blob))
    with pytest.raises(StateDecodeError):
        serialize.deserialize(b"garbage")


def test_hmac_key_must_match(features_factory):
    blob = serialize.serialize(_state(features_factory, 3), key=b"k1")
    assert serialize.deserialize(blob, key=b"k1").patient_id.startswith("p_")
    with pytest.raises(StateDecodeError):
        serialize.deserialize(blob, key=b"k2")


def test_disallowed_classes_are_refused():
    import hashlib

    body = zlib.compress(pickle.dumps(io.StringIO("x")))
    blob = serialize.MAGIC + hashlib.sha256(body).digest() + body
    with pytest.raises(StateDecodeError, match="disallowed"):
        serialize.deserialize(blob)
