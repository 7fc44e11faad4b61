"""Remove earlier demo runs: ``make demo-clean`` (``python -m novamind.app.demo --clean``).

A run ``<stamp>`` (UTC ``YYYYmmddHHMMSS``) owns the topics and consumer groups prefixed
``demo-<stamp>.``, the database ``novamind_demo_<stamp>`` and the folder
``demo-output/<stamp>/``. Only names of exactly that shape are touched.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka.admin import AdminClient
from pymongo import MongoClient

from novamind.platform.kafka import admin_config
from novamind.platform.settings import Settings

_PREFIX = re.compile(r"^demo-(\d{14})\.")
_DATABASE = re.compile(r"^novamind_demo_(\d{14})$")
_FOLDER = re.compile(r"^\d{14}$")


@dataclass
class DemoRun:
    """What one run left behind."""

    topics: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    databases: list[str] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)


def group_runs(
    topics: Iterable[str], groups: Iterable[str], databases: Iterable[str], folders: Iterable[Path]
) -> dict[str, DemoRun]:
    """The demo runs these names belong to; names of any other shape are left out."""
    runs: dict[str, DemoRun] = {}
    for name in sorted(topics):
        if match := _PREFIX.match(name):
            runs.setdefault(match[1], DemoRun()).topics.append(name)
    for name in sorted(groups):
        if match := _PREFIX.match(name):
            runs.setdefault(match[1], DemoRun()).groups.append(name)
    for name in sorted(databases):
        if match := _DATABASE.match(name):
            runs.setdefault(match[1], DemoRun()).databases.append(name)
    for folder in sorted(folders):
        if _FOLDER.match(folder.name) and folder.is_dir():
            runs.setdefault(folder.name, DemoRun()).folders.append(folder)
    return runs


def find_runs(settings: Settings, output: Path) -> dict[str, DemoRun]:
    """Every demo run on the services of ``settings`` and under ``output``."""
    admin = AdminClient(admin_config(settings.kafka))
    topics = admin.list_topics(timeout=30).topics
    listed = admin.list_consumer_groups(request_timeout=30).result()
    groups = [g.group_id for g in listed.valid]
    client = _mongo(settings)
    try:
        databases = client.list_database_names()
    finally:
        client.close()
    folders = list(output.iterdir()) if output.is_dir() else []
    return group_runs(topics, groups, databases, folders)


def remove_runs(settings: Settings, runs: dict[str, DemoRun]) -> None:
    """Delete the topics, consumer groups, databases and folders of ``runs``."""
    admin = AdminClient(admin_config(settings.kafka))
    topics = [t for run in runs.values() for t in run.topics]
    groups = [g for run in runs.values() for g in run.groups]
    if topics:
        for future in admin.delete_topics(topics, operation_timeout=60).values():
            future.result()
    if groups:
        for future in admin.delete_consumer_groups(groups, request_timeout=60).values():
            future.result()
    client = _mongo(settings)
    try:
        for name in (d for run in runs.values() for d in run.databases):
            client.drop_database(name)
    finally:
        client.close()
    for folder in (f for run in runs.values() for f in run.folders):
        shutil.rmtree(folder)


def _mongo(settings: Settings) -> MongoClient[dict[str, object]]:
    return MongoClient(settings.mongo.uri.get_secret_value(), serverSelectionTimeoutMS=10_000)


def describe(runs: dict[str, DemoRun]) -> str:
    """One line: how many runs and what they hold."""
    count = {
        "topics": sum(len(r.topics) for r in runs.values()),
        "consumer groups": sum(len(r.groups) for r in runs.values()),
        "databases": sum(len(r.databases) for r in runs.values()),
        "output folders": sum(len(r.folders) for r in runs.values()),
    }
    held = ", ".join(f"{n} {what}" for what, n in count.items())
    return f"{len(runs)} demo run{'s' if len(runs) != 1 else ''} ({held})"
