"""``novamind worker``: run a stream-processing worker replica (Faust)."""

from __future__ import annotations

import argparse
from typing import Any

from novamind.settings import Settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run a worker replica that joins the pipeline's consumer group",
        description="Run one worker replica. Start several to share the partitions.",
    )
    parser.add_argument(
        "--web-port", type=int, default=6066, help="port of the worker's web views and metrics"
    )
    parser.add_argument(
        "--data-dir", default=None, help="folder for table state (default: .local/workers/<port>)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from workers.app import run_worker

    return run_worker(settings, web_port=args.web_port, data_dir=args.data_dir)
