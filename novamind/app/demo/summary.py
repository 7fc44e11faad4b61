"""What the run produced, read back from Kafka and MongoDB, as readable lines.

:func:`collect` does the reading; every other function is pure and formats one aspect.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from statistics import fmean
from typing import Any

from pymongo import MongoClient

from novamind.app.demo.feed import FeedTotals
from novamind.app.demo.plan import DIRECT, FHIR, FITBIT, INTAKE, OPENMHEALTH
from novamind.app.demo.plot import latest_features
from novamind.platform.settings import Settings
from novamind.platform.topicreader import read_all
from schemas.codec import AvroCodec
from schemas.topics import TopicName

_RDKAFKA = re.compile(r"^%(\d)\|")  # librdkafka's own log lines start with %<syslog level>|


@dataclass(frozen=True)
class Results:
    """The run's outputs: twin documents (without state), alerts, last feature revisions,
    every feature record, twin updates and dead letters."""

    twins: list[dict[str, Any]]
    alerts: list[dict[str, Any]]
    features: list[dict[str, Any]]
    revisions: int
    updates: list[dict[str, Any]]
    letters: list[dict[str, Any]]


def collect(settings: Settings) -> Results:
    codec = AvroCodec.from_settings(settings.kafka)

    def records(topic: str) -> list[dict[str, Any]]:
        messages = read_all(settings.kafka, settings.kafka.topic(topic))
        return [codec.decode_dict(m.value())[1] for m in messages]

    client: MongoClient[dict[str, Any]] = MongoClient(settings.mongo.uri.get_secret_value())
    try:
        twins = list(client[settings.mongo.database].twins.find({}, {"state": 0}))
    finally:
        client.close()
    every_feature = records(TopicName.PATIENT_DAILY_FEATURES)
    return Results(
        twins=twins,
        alerts=records(TopicName.TWIN_ALERTS),
        features=latest_features(every_feature),
        revisions=sum(1 for f in every_feature if f["revision"] > 0),
        updates=records(TopicName.TWIN_UPDATES),
        letters=records(TopicName.PIPELINE_DEADLETTER),
    )


def counts(values: Iterable[Any]) -> str:
    """``A 3, B 1`` (most common first), or ``none``."""
    common = Counter(values).most_common()
    return ", ".join(f"{value} {n:,}" for value, n in common) or "none"


def feed_lines(totals: FeedTotals) -> list[str]:
    """What entered by each route."""
    produced, files, runs, rejected = totals.produced, totals.files, totals.runs, totals.rejected
    lines = []
    for name, what in ((FITBIT, "Fitbit Web API"), (OPENMHEALTH, "Open mHealth"), (FHIR, "FHIR R4 Bundle")):
        line = (
            f"{produced[name]:,} records from {files[name]:,} {what} files "
            f"({runs[name]:,} imports with novamind connect {name})"
        )
        lines.append(f"{name:<12}{line}" + (f", {rejected[name]:,} rejected" if rejected[name] else ""))
    refused = ", ".join(
        f"HTTP {status} x{n:,}"
        for status, n in sorted(totals.intake_status.items())
        if status not in (200, 201)
    )
    accepted = f"{produced[INTAKE]:,} reports accepted over HTTP"
    lines.append(f"{INTAKE:<12}{accepted}" + (f", refused: {refused}" if refused else ""))
    lines.append(f"{DIRECT:<12}{produced[DIRECT]:,} records published straight to the topics")
    return lines


def twin_lines(twins: list[dict[str, Any]], observed_days: int) -> list[str]:
    """Risk levels, model sources, days learned and forecast error against persistence."""
    summaries = [t.get("summary") or {} for t in twins]
    learned = sum(int(s.get("days_learned") or 0) for s in summaries)
    lines = [
        f"{len(twins)} by risk level: {counts(t['risk_level'] for t in twins)}; "
        f"model: {counts(t['model_source'] for t in twins)}",
    ]
    share = f" ({learned / observed_days:.0%})" if observed_days else ""
    lines.append(f"learned from {learned:,} of {observed_days:,} patient-days with data{share}")
    pairs = [
        (s["forecast_mae"], s["persistence_mae"])
        for s in summaries
        if s.get("forecast_mae") is not None and s.get("persistence_mae") is not None
    ]
    if pairs:
        mae, persistence = fmean(p[0] for p in pairs), fmean(p[1] for p in pairs)
        lines.append(
            f"next-day severity forecast MAE {mae:.2f} vs {persistence:.2f} for persistence "
            f"(mean over {len(pairs)} twins)"
        )
    return lines


def quality_line(features: list[dict[str, Any]], revisions: int) -> str:
    """Patient-days, their quality, and how many revisions late data caused."""
    observed = [f for f in features if not f["missing"]]
    line = f"{len(features):,} patient-days ({len(features) - len(observed):,} without data)"
    if observed:
        meets = sum(1 for f in observed if f["meets_quality_standards"])
        line += (
            f", {meets / len(observed):.0%} meet the quality standards, "
            f"mean completeness {fmean(f['completeness'] for f in observed):.2f}, "
            f"mean outlier share {fmean(f['outlier_share'] for f in observed):.3f}"
        )
    return line + f"; {revisions:,} revisions from late data"


def pick_patient(twins: list[dict[str, Any]], alerts: list[dict[str, Any]]) -> str | None:
    """The twin to draw: the most alerts, then the most updates, then the smallest id."""
    if not twins:
        return None
    raised = Counter(a["patient_id"] for a in alerts)
    return min(twins, key=lambda t: (-raised[t["_id"]], -t["twin_version"], t["_id"]))["_id"]


def line_level(line: str) -> str | None:
    """The level of one log line: structlog JSON, a librdkafka line (``%<syslog level>|``)
    or the start of a Python traceback; None for anything else."""
    if line.startswith("{"):
        try:
            entry = json.loads(line)
        except ValueError:
            return None
        return str(entry.get("level", "?")).lower() if isinstance(entry, dict) else None
    if (match := _RDKAFKA.match(line)) is not None:
        severity = int(match.group(1))
        return "error" if severity <= 3 else "warning" if severity == 4 else "info"
    if line.startswith("Traceback"):
        return "error"
    return None


def log_levels(lines: Iterable[str]) -> tuple[Counter[str], list[str]]:
    """Log lines by level, and the error lines themselves."""
    levels: Counter[str] = Counter()
    errors = []
    for line in lines:
        level = line_level(line)
        if level is None:
            continue
        levels[level] += 1
        if level in ("error", "critical", "exception"):
            errors.append(line.strip())
    return levels, errors


def labelled(label: str, lines: Iterable[str]) -> list[str]:
    """The label before the first line, blanks before the others."""
    return [f"{label if n == 0 else '':<13}{line}" for n, line in enumerate(lines)]


def summary_lines(results: Results, totals: FeedTotals, logs: Mapping[str, Counter[str]]) -> list[str]:
    """Every line of the summary."""
    observed = sum(1 for f in results.features if not f["missing"])
    lines = labelled("feed", feed_lines(totals))
    lines += labelled("twins", twin_lines(results.twins, observed))
    lines += labelled(
        "alerts", [f"{len(results.alerts):,}: {counts(a['alert_type'] for a in results.alerts)}"]
    )
    lines += labelled("data quality", [quality_line(results.features, results.revisions)])
    lines += labelled(
        "dead letters", [f"{len(results.letters):,}: {counts(d['error_class'] for d in results.letters)}"]
    )
    lines += labelled(
        "logs",
        [
            f"{name}: {levels['error'] + levels['critical']:,} errors, {levels['warning']:,} warnings "
            f"in {sum(levels.values()):,} lines"
            for name, levels in logs.items()
        ],
    )
    return lines


def explore_commands(settings: Settings, patient: str | None) -> list[str]:
    """Shell commands that look further into this run's topics and database."""
    example = patient or "PSEUDONYM"
    return [
        f"export NOVAMIND_KAFKA__TOPIC_PREFIX={settings.kafka.topic_prefix} "
        f"NOVAMIND_MONGO__DATABASE={settings.mongo.database}",
        ".venv/bin/novamind consume twin-updates --limit 5",
        f".venv/bin/novamind twin show {example}",
        f".venv/bin/novamind twin plot {example} -o twin.png",
        ".venv/bin/novamind dlq inspect --limit 10",
        ".venv/bin/novamind status --dead-letters",
    ]
