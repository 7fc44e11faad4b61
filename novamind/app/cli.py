"""The ``novamind`` command line: one entry point, a subcommand per capability.

Each subcommand module exposes ``register(subparsers)``, which adds its parser and sets
``handler(args, settings) -> int`` as the default. Errors the user can fix are printed as one
precise message with exit code 2, never as a stack trace.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from novamind.app.exceptions import ServiceError
from novamind.platform.exceptions import UsageError
from novamind.platform.settings import Settings
from schemas.exceptions import RegistryError

# Modules that contribute subcommands, in the order ``--help`` lists them.
COMMAND_MODULES = (
    "novamind.app.commands.services",
    "novamind.app.commands.topics",
    "novamind.app.commands.worker",
    "novamind.app.commands.simulate",
    "novamind.app.commands.connect",
    "novamind.app.commands.inspect",
    "novamind.app.commands.status",
    "novamind.app.commands.intake",
    "novamind.app.commands.audit",
    "novamind.app.commands.reid",
    "novamind.app.commands.dataset",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="novamind",
        description="NOVAMIND digital twin pipeline: services, topics, workers and tools.",
        epilog="Configuration comes from NOVAMIND_* environment variables; see README.md.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = Settings()
    # lazy: structlog takes ~40 ms to import; --help and usage errors exit before logging is set up
    from novamind.platform.logs import configure_logging

    configure_logging(settings)
    try:
        return int(args.handler(args, settings) or 0)
    except (UsageError, ServiceError, RegistryError) as exc:
        print(f"novamind {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
