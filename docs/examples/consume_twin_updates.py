"""Read NOVAMIND twin updates and alerts with plain confluent-kafka and a schema registry.

Needs only ``pip install "confluent-kafka[avro,schemaregistry]"``: no NOVAMIND code. Each record
prints as one JSON line: topic, partition, offset, key (the patient pseudonym) and the value
the registry's writer schema decodes.

    python docs/examples/consume_twin_updates.py \
        --bootstrap 127.0.0.1:9092 \
        --registry http://127.0.0.1:8081/apis/ccompat/v7 \
        --group my-dashboard twin-updates twin-alerts
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from confluent_kafka import Consumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("topics", nargs="+", help="e.g. twin-updates twin-alerts")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--registry", default="http://127.0.0.1:8081/apis/ccompat/v7")
    parser.add_argument("--group", default="twin-consumers", help="consumer group (your service name)")
    parser.add_argument("--max-messages", type=int, default=0, help="stop after this many (0: never)")
    parser.add_argument("--timeout", type=float, default=0, help="stop after this many seconds (0: never)")
    args = parser.parse_args(argv)

    registry = SchemaRegistryClient({"url": args.registry})
    # No reader schema: each record is decoded with the writer schema its id names.
    values = AvroDeserializer(registry)
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",  # the workers write in transactions
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(args.topics)
    seen = 0
    deadline = time.monotonic() + args.timeout if args.timeout else None
    try:
        while not (args.max_messages and seen >= args.max_messages):
            if deadline is not None and time.monotonic() > deadline:
                break
            message = consumer.poll(1.0)
            if message is None:
                continue
            if message.error():
                print(f"consumer error: {message.error()}", file=sys.stderr)
                continue
            context = SerializationContext(message.topic(), MessageField.VALUE, message.headers())
            record = values(message.value(), context)
            key = message.key().decode("utf-8") if message.key() else None  # plain UTF-8 keys
            line = {
                "topic": message.topic(),
                "partition": message.partition(),
                "offset": message.offset(),
                "key": key,
                "value": record,
            }
            print(json.dumps(line, default=str), flush=True)
            consumer.commit(message=message, asynchronous=False)  # after the record is handled
            seen += 1
    finally:
        consumer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
