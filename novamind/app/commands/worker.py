"""``novamind worker``: run a stream-processing worker replica."""

from __future__ import annotations

import argparse
from typing import Any

from novamind.platform.settings import Settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run a worker replica that joins the pipeline's consumer group",
        description="Run one worker replica. Start several to share the partitions; SIGTERM "
        "finishes the batch, commits and leaves the group.",
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
    return run_worker(settings)
