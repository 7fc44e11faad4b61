"""Read the export's inputs: daily features from Kafka, twin attributes from MongoDB."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from novamind.app.datasets.exceptions import SourceError
from novamind.app.datasets.rows import Attributes
from novamind.platform.settings import Settings
from novamind.platform.topicreader import read_all
from schemas.codec import AvroCodec
from schemas.exceptions import SchemaError
from schemas.topics import TopicName
from workers.twin.exceptions import StateDecodeError
from workers.twin.serialize import deserialize

FEATURES_RECORD = "PatientDailyFeatures"
TWINS = "twins"


def decode_features(messages: Iterable[Any], codec: AvroCodec) -> list[dict[str, Any]]:
    """Decoded ``PatientDailyFeatures`` dicts; any other record or undecodable bytes is an error
    naming its position (never its content)."""
    records = []
    for message in messages:
        where = f"{message.topic()}[{message.partition()}]@{message.offset()}"
        try:
            name, record = codec.decode_dict(message.value())
        except SchemaError as exc:
            raise SourceError(f"{where} is not decodable: {exc}") from exc
        if name != FEATURES_RECORD:
            raise SourceError(f"{where} holds a {name}, expected {FEATURES_RECORD}")
        records.append(record)
    return records


def read_features(settings: Settings, *, timeout_s: float = 120.0) -> list[dict[str, Any]]:
    """Every record now on the daily-features topic."""
    topic = settings.kafka.topic(TopicName.PATIENT_DAILY_FEATURES)
    try:
        messages = read_all(settings.kafka, topic, timeout_s=timeout_s)
    except TimeoutError as exc:
        raise SourceError(str(exc)) from exc
    return decode_features(messages, AvroCodec.from_settings(settings))


def twin_attributes(document: Mapping[str, Any]) -> Attributes:
    """Age band and sex of one ``twins`` document: readable fields when the document has them,
    else from the serialized twin state."""
    if "age_band" in document:
        return Attributes.of(document.get("age_band"), document.get("sex"))
    try:
        state = deserialize(bytes(document["state"]))
    except (KeyError, TypeError, StateDecodeError) as exc:
        raise SourceError(f"twin {document.get('_id')}: state not readable: {exc}") from exc
    return Attributes.of(state.age_band, state.sex)


async def read_twin_attributes(db: AsyncDatabase[dict[str, Any]]) -> dict[str, Attributes]:
    """Attributes of every stored twin, by pseudonym."""
    cursor = db[TWINS].find({}, {"state": 1, "age_band": 1, "sex": 1})
    return {str(doc["_id"]): twin_attributes(doc) async for doc in cursor}
