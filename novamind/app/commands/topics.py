"""``novamind topics create|list``: make the cluster match the topic registry."""

from __future__ import annotations

import argparse
from typing import Any

from novamind.platform.settings import Settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "topics",
        help="create or check every topic of the registry; report drift",
        description="Create missing topics and report drift (partition count, cleanup policy).",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("create", help="create missing topics, report drift; exit 1 on drift")
    actions.add_parser("list", help="print the registry: topics, schemas, partitions, access")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from novamind.platform.topicadmin import ensure_topics, print_registry

    if args.action == "list":
        print_registry(settings.kafka)
        return 0
    return ensure_topics(settings.kafka)
