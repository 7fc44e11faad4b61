"""``novamind status``: consumer-group lag per partition, replicas, throughput, dead letters.

The figures come from the cluster through the admin client (:mod:`novamind.app.statusreader`);
what they mean and how they print is pure code in :mod:`novamind.app.status`.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from novamind.app.status import StatusError, render, to_json
from novamind.platform.exceptions import UsageError
from novamind.platform.settings import Settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "status",
        help="lag per group and partition, replicas, throughput, dead letters",
        description=(
            "Show the consumer groups of this environment (every group named <prefix>novamind-*, "
            "always the workers group): lag per topic and partition, the replicas in each group and "
            "the partitions they own, produced and consumed records per second, and the dead letters."
        ),
    )
    parser.add_argument(
        "--group",
        action="append",
        metavar="GROUP",
        help="only this consumer group (cluster name, repeatable)",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=5.0,
        help="seconds between the two offset samples that give throughput; 0 skips it (default 5)",
    )
    parser.add_argument(
        "--dead-letters",
        action="store_true",
        help="read the dead-letter topic and count its records by reason and source topic",
    )
    parser.add_argument(
        "--all-partitions", action="store_true", help="list every partition, also those without lag"
    )
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON (every partition)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    # lazy: the Kafka admin client and the Avro codec take ~50 ms to import; only `status` reads Kafka
    from novamind.app.statusreader import collect

    if args.interval < 0:
        raise UsageError(f"--interval must be 0 or more seconds, not {args.interval:g}")
    try:
        status = collect(
            settings.kafka, groups=args.group, interval_s=args.interval, read_dead_letters=args.dead_letters
        )
    except StatusError as exc:
        raise UsageError(str(exc)) from exc
    print(
        json.dumps(to_json(status), indent=2) if args.json else render(status), end="\n" if args.json else ""
    )
    return 0
