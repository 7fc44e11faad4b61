"""``novamind services up|down|status``: the local Kafka broker, FerretDB and schema registry."""

from __future__ import annotations

import argparse
from typing import Any

from novamind.platform.settings import Settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "services",
        help="start, stop or report the local Kafka broker, FerretDB and schema registry",
        description="Manage the Docker-free development services (deploy/local).",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("up", help="start what is not running and wait until each answers")
    actions.add_parser("down", help="stop the services (their data stays)")
    actions.add_parser("status", help="report each service's address, process and health")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    # lazy: the health checks need pymongo and the Kafka admin client, ~0.1 s to import
    from novamind.app.localservices import LocalServices

    services = LocalServices(settings=settings.local)
    if args.action == "down":
        services.down()
        print("services stopped")
        return 0
    statuses = services.up() if args.action == "up" else services.status()
    for status in statuses:
        health = "answering" if status.answering else "NOT answering"
        print(
            f"{status.name:9} {status.address:16} pid={status.pid or '-':<8} {health}  log={status.log_file}"
        )
    return 0 if all(s.answering for s in statuses) else 1
