"""An output names a registry topic, and the record type must be one that topic carries."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.codec import AvroCodec
from schemas.exceptions import WrongTopic
from schemas.topics import TopicName
from workers.runtime.outputs import Outputs


class Refusing:
    """A producer the check must stop before: any produce call fails the test."""

    def produce(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("produced a record its topic does not carry")


def test_a_record_its_topic_does_not_carry_is_refused_before_it_is_produced() -> None:
    outputs = Outputs(Refusing(), codec=AvroCodec(), topic_name=str)  # type: ignore[arg-type]
    with pytest.raises(WrongTopic, match="twin-alerts carries TwinAlert, not TwinUpdate"):
        outputs.send(TopicName.TWIN_ALERTS, "TwinUpdate", b"p_x", {})
    assert outputs.sent == {}


class Recording:
    """A producer that keeps what it was asked to produce."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def produce(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append((args, kwargs))


def test_raw_records_keep_their_order_and_only_the_last_reports_its_delivery() -> None:
    producer = Recording()
    outputs = Outputs(producer, codec=AvroCodec(), topic_name=lambda t: f"x.{t}")  # type: ignore[arg-type]
    outputs.send_records(TopicName.PATIENT_WINDOWS, 3, {b"p|h": b"1", b"p|c": None, b"p|d": b"2"})
    assert [(args, kw["key"], kw["value"], kw["partition"]) for args, kw in producer.calls] == [
        (("x.patient-windows",), b"p|h", b"1", 3),
        (("x.patient-windows",), b"p|c", None, 3),
        (("x.patient-windows",), b"p|d", b"2", 3),
    ]
    assert ["on_delivery" in kwargs for _, kwargs in producer.calls] == [False, False, True]
    assert outputs.sent == {TopicName.PATIENT_WINDOWS: 3}
