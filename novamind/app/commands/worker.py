"""``novamind worker``: run a stream-processing worker replica."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from novamind.platform.settings import STATIC_WITHOUT_REPLICA_ID, Settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run a worker replica that joins the pipeline's consumer group",
        description="Run one worker replica. Start several to share the partitions; SIGTERM "
        "finishes the batch, commits and leaves the group (a static member, "
        "NOVAMIND_WORKER__STATIC_MEMBERSHIP, keeps its partitions until the session timeout).",
    )
    parser.add_argument(
        "--web-port", type=int, default=None, help="port of the health, metrics and patient views"
    )
    parser.add_argument("--replica-id", default=None, help="stable replica name (default: host and pid)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    # lazy: the worker runtime takes ~1 s to import; only `novamind worker` needs it
    from workers.app import run_worker

    overrides: dict[str, Any] = {}
    if args.web_port is not None:
        overrides["web_port"] = args.web_port
    if args.replica_id:
        overrides["replica_id"] = args.replica_id
    if overrides:
        worker = settings.worker.model_copy(update=overrides)
        settings = settings.model_copy(update={"worker": worker})
    if settings.worker.static_membership and not settings.worker.replica_id:
        print(f"novamind worker: {STATIC_WITHOUT_REPLICA_ID}", file=sys.stderr)
        return 2
    return run_worker(settings)
