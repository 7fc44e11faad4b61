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

from novamind.exceptions import UsageError
from novamind.settings import Settings

# Modules that contribute subcommands, in the order ``--help`` lists them.
COMMAND_MODULES = (
    "novamind.commands.services",
    "novamind.commands.topics",
    "novamind.commands.worker",
    "novamind.commands.simulate",
    "novamind.commands.connect",
    "novamind.commands.inspect",
    "novamind.commands.status",
    "novamind.commands.intake",
    "novamind.commands.audit",
    "novamind.commands.reid",
    "novamind.commands.dataset",
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
    from novamind.localservices import ServiceError
    from novamind.logs import configure_logging
    from schemas.exceptions import RegistryError

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
