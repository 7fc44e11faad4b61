"""``novamind topics create|list|reframe``: make the cluster and the schema registry match the
topic registry; move a topic's single-object records to the Confluent wire format."""

from __future__ import annotations

import argparse
from typing import Any

from novamind.platform.exceptions import UsageError
from novamind.platform.settings import Settings
from schemas.exceptions import RegistryError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "topics",
        help="create or check every topic and registry subject; report drift",
        description="Create missing topics, register value schemas (topic-name strategy, BACKWARD) "
        "when a schema registry is configured, and report drift.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("create", help="create missing topics and subjects, report drift; exit 1 on drift")
    actions.add_parser("list", help="print the registry: topics, schemas, partitions, access")
    reframe = actions.add_parser(
        "reframe",
        help="copy a topic into another with every single-object record in the Confluent framing",
        description="Copy SOURCE (a registry topic, the environment's prefix applied) into TARGET "
        "partition by partition: single-object records get the registry id of their writer "
        "version and keep their body byte for byte; Confluent records are copied as they are. "
        "Keys, partitions, timestamps and headers are kept. See docs/consumers.md.",
    )
    reframe.add_argument("source", help="topic to read, e.g. twin-updates")
    reframe.add_argument("target", help="topic to write (created like SOURCE when missing)")
    reframe.add_argument("--dry-run", action="store_true", help="only count each framing per partition")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    # lazy: the Kafka admin and consumer clients and the Avro codec take ~50 ms to import
    from novamind.platform.reframe import print_report, reframe_topic
    from novamind.platform.topicadmin import ensure_subjects, ensure_topics, print_registry

    if args.action == "list":
        print_registry(settings.kafka)
        return 0
    try:
        if args.action == "reframe":
            report = reframe_topic(settings.kafka, args.source, args.target, dry_run=args.dry_run)
            print_report(report)
            return 0
        topics = ensure_topics(settings.kafka)
        return max(topics, ensure_subjects(settings.kafka))
    except RegistryError as exc:
        raise UsageError(f"schema registry {settings.kafka.schema_registry_url}: {exc}") from exc
