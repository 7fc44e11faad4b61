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
