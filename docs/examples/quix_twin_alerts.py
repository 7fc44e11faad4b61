"""Follow NOVAMIND twin alerts with Quix Streams and a schema registry.

Needs only ``pip install -r docs/examples/requirements-quixstreams.txt`` (Quix Streams pins
confluent-kafka below NOVAMIND's version: give it an environment of its own). No NOVAMIND code.
Keeps the alerts of the given severities and prints each as one JSON line.

    python docs/examples/quix_twin_alerts.py \
        --bootstrap 127.0.0.1:9092 \
        --registry http://127.0.0.1:8081/apis/ccompat/v7 \
        --group alert-pager --severity CRITICAL twin-alerts
"""

from __future__ import annotations

import argparse
import json
import sys

from quixstreams import Application
from quixstreams.models.serializers.avro import AvroDeserializer
from quixstreams.models.serializers.schema_registry import SchemaRegistryClientConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("topic", help="twin-alerts (with your environment's prefix, if any)")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--registry", default="http://127.0.0.1:8081/apis/ccompat/v7")
    parser.add_argument("--group", default="alert-pager")
    parser.add_argument(
        "--severity", action="append", help="keep alerts of this severity (repeatable; default all)"
    )
    parser.add_argument("--max-messages", type=int, default=0, help="stop after this many (0: never)")
    parser.add_argument("--timeout", type=float, default=0, help="stop after so many idle seconds (0: never)")
    args = parser.parse_args(argv)

    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        auto_create_topics=False,  # NOVAMIND's `topics create` owns its topics
        consumer_extra_config={"isolation.level": "read_committed"},
    )
    alerts = app.topic(
        args.topic,
        key_deserializer="str",  # keys are plain UTF-8 pseudonyms
        value_deserializer=AvroDeserializer(
            schema_registry_client_config=SchemaRegistryClientConfig(url=args.registry)
        ),
    )

    def emit(alert: dict) -> None:
        print(json.dumps(alert, default=str), flush=True)

    sdf = app.dataframe(alerts)
    if args.severity:
        sdf = sdf.filter(lambda alert: alert["severity"] in args.severity)
    sdf = sdf.update(emit)
    # Without limits the application runs until SIGTERM; the limits serve tests and trials:
    # `timeout` ends it after that many seconds without a new record, `count` after N outputs.
    app.run(sdf, timeout=args.timeout, count=args.max_messages, collect=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
