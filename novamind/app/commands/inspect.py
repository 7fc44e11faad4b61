"""``novamind twin show|plot|versions|promote|rollback``, ``novamind dlq inspect|replay`` and
``novamind consume``."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

from novamind.platform.exceptions import UsageError
from novamind.platform.settings import Settings
from schemas.topics import TopicName


def register(subparsers: Any) -> None:
    twin = subparsers.add_parser(
        "twin", help="show a twin, plot it or list its versions", description="Read a twin from MongoDB."
    )
    twin_actions = twin.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = twin_actions.add_parser("show", help="print a twin readably")
    show.add_argument("patient", help="patient pseudonym (p_...)")
    show.add_argument("--json", action="store_true", help="print the stored document as JSON")
    plot = twin_actions.add_parser("plot", help="draw a twin's trajectory to a PNG")
    plot.add_argument("patient", help="patient pseudonym (p_...)")
    plot.add_argument("-o", "--output", type=Path, default=Path("twin.png"), help="PNG file to write")
    versions = twin_actions.add_parser(
        "versions",
        help="list a patient's stored model snapshots (twin_models) with model version id and metrics",
    )
    versions.add_argument("patient", help="patient pseudonym (p_...)")
    versions.add_argument("--json", action="store_true", help="print the stored documents as JSON")
    promote = twin_actions.add_parser(
        "promote",
        help="apply the promotion rule to the shadow model version; promote it when it passes (audited)",
        description="Compare the shadow model version with the live one on their paired forecasts "
        "and promote the shadow when the rule passes (workers/twin/promotion.py states it).",
    )
    promote.add_argument("--dry-run", action="store_true", help="report only, change nothing")
    rollback = twin_actions.add_parser(
        "rollback",
        help="restore one of a patient's snapshots (audited); see twin versions for the numbers",
        description="Send the snapshot to twin-inputs as a TwinRestore; the worker owning the patient "
        "applies it in order with the patient's inputs.",
    )
    rollback.add_argument("patient", help="patient pseudonym (p_...)")
    rollback.add_argument("--to", type=int, required=True, dest="snapshot", help="snapshot number")
    pinning = rollback.add_mutually_exclusive_group()
    pinning.add_argument(
        "--pin", action="store_true", default=None, help="keep the twin on the snapshot's model version"
    )
    pinning.add_argument(
        "--no-pin",
        action="store_false",
        dest="pin",
        help="let the twin follow the live version (default: pinned when the snapshot's version is not live)",
    )
    for sub in (show, plot, versions, rollback):  # every read and change is audited
        sub.add_argument("--actor", default=None, help="who reads (default: your OS user name)")
        sub.add_argument(
            "--purpose",
            default="OPERATIONS" if sub is rollback else "TREATMENT",
            help="purpose of use for the audit log (TREATMENT; OPERATIONS for rollback)",
        )
    promote.add_argument("--actor", default=None, help="who promotes (default: your OS user name)")
    twin.set_defaults(handler=run_twin)

    dlq = subparsers.add_parser(
        "dlq", help="inspect or replay dead letters", description="Dead-letter tools."
    )
    dlq_actions = dlq.add_subparsers(dest="action", metavar="ACTION", required=True)
    inspect = dlq_actions.add_parser("inspect", help="list dead letters, filtered")
    replay = dlq_actions.add_parser("replay", help="send selected dead letters back to their source topic")
    for sub in (inspect, replay):
        sub.add_argument("--reason", help="only this error class (e.g. OutOfRange)")
        sub.add_argument("--topic", help="only dead letters from this source topic")
        sub.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    dlq.set_defaults(handler=run_dlq)

    consume = subparsers.add_parser("consume", help="print decoded records of a topic")
    consume.add_argument("topic", help="registry topic name, e.g. twin-updates")
    consume.add_argument("--limit", type=int, default=20, help="at most this many records (default 20)")
    consume.set_defaults(handler=run_consume)


def run_twin(args: argparse.Namespace, settings: Settings) -> int:
    if args.action in ("promote", "rollback"):
        return _change_version(args, settings)
    return _read_twin(args, settings)


def _read_twin(args: argparse.Namespace, settings: Settings) -> int:
    """``twin show|plot|versions``: each read is audited before anything is shown."""
    # lazy: pymongo, the Kafka producer and the audit log take ~0.2 s to import
    from novamind.app.demo.plot import latest_features, plot_trajectory, require_matplotlib
    from novamind.app.twinops import TwinReader

    if args.action == "plot":
        require_matplotlib()  # before the read: a missing extra is said at once, nothing is accessed
    reader = TwinReader(settings, patient=args.patient, actor=args.actor, purpose=args.purpose)
    if args.action == "versions":
        twin, snapshots = reader.snapshots()
        if not snapshots:
            raise UsageError(f"no stored snapshots for {args.patient} in database {settings.mongo.database}")
        if args.json:
            print(json.dumps({"twin": twin, "snapshots": snapshots}, default=str, indent=2))
        else:
            print("\n".join([*format_twin_version(twin), *format_versions(snapshots)]))
        return 0
    doc = reader.twin(view=args.action)
    if doc is None:
        raise UsageError(f"no twin for {args.patient} in database {settings.mongo.database}")
    if args.action == "plot":
        features = latest_features(_records(settings, TopicName.PATIENT_DAILY_FEATURES))
        plot_trajectory(
            args.patient,
            features,
            _records(settings, TopicName.TWIN_UPDATES),
            _records(settings, TopicName.TWIN_ALERTS),
            args.output,
        )
        print(f"wrote {args.output}")
        return 0
    if args.json:
        print(json.dumps(doc, default=str, indent=2))
        return 0
    print("\n".join(format_twin(doc)))
    return 0


def format_twin(doc: dict[str, Any]) -> list[str]:
    """A twin document (without its state), readably."""
    summary = doc.get("summary", {})
    pinned = " (pinned by a rollback)" if doc.get("pinned") else ""
    shadow = f", shadow {doc['shadow']['version_id']}" if doc.get("shadow") else ""
    severity, mae = _num(doc.get("forecast_severity")), _num(doc.get("forecast_mae"))
    persistence = _num(summary.get("persistence_mae"))
    lines = [
        f"twin {doc['_id']}  version {doc['twin_version']}  as of {doc['as_of_date']}",
        f"  updated         {doc['updated_at']}",
        f"  risk level      {doc['risk_level']}   model {doc['model_source']} (v{doc['model_version']})",
        f"  model version   {doc.get('model_version_id') or 'unrecorded'}{pinned}{shadow}",
        f"  bands           PHQ-9 {doc.get('phq9_band') or '-'}   GAD-7 {doc.get('gad7_band') or '-'}",
        f"  forecast        severity {severity} (MAE {mae}, persistence {persistence})",
        f"                  PHQ-9 {_num(doc.get('forecast_phq9'))}",
        f"  anomaly score   {_num(doc.get('anomaly_score'))}   deterioration {doc.get('deterioration')}",
        f"  active alerts   {', '.join(doc.get('active_alerts') or []) or 'none'}",
    ]
    for drug, response in (summary.get("medication_response") or {}).items():
        lines.append(f"  medication      {drug}: {response}")
    if summary.get("coupling_lag1"):
        lines.append(f"  coupling (lag 1 correlation with next-day severity) {summary['coupling_lag1']}")
    return lines


def _change_version(args: argparse.Namespace, settings: Settings) -> int:
    """``twin promote|rollback``, audited (workers/twin/promotion.py states the promotion rule)."""
    # lazy: the twin store and the model versions load the twin models (numpy, scipy: ~2 s to import)
    from novamind.app.twinversions import promote_shadow, roll_back

    if args.action == "promote":
        report, lines = promote_shadow(settings, actor=args.actor, dry_run=args.dry_run)
        print("\n".join(lines))
        if report.promote:
            print("dry run: nothing changed" if args.dry_run else f"promoted {report.shadow}")
        return 0 if report.promote else 1
    done, live = roll_back(
        settings,
        patient=args.patient,
        snapshot=args.snapshot,
        actor=args.actor,
        purpose=args.purpose,
        pin=args.pin,
    )
    pinned = "pinned to it" if done.pin else f"following the live version {live}"
    print(
        f"sent: {args.patient} back to snapshot {done.snapshot} ({done.to_version}), {pinned}; "
        f"was {done.from_version}. The worker owning the patient applies it in order "
        f"(audit event {done.audit_event_id})."
    )
    return 0


def format_twin_version(twin: dict[str, Any] | None) -> list[str]:
    """The twin's current model version, whether it is pinned, and its shadow's paired metrics."""
    if twin is None:
        return []
    pinned = "  (pinned by a rollback)" if twin.get("pinned") else ""
    lines = [f"twin runs {twin.get('model_version_id') or 'unrecorded'}{pinned}"]
    shadow = twin.get("shadow")
    if shadow:
        p = shadow.get("paired") or {}
        lines.append(
            f"shadow {shadow['version_id']}: {p.get('pairs', 0)} paired forecasts, severity MAE "
            f"live {_num(p.get('live_mae'))} / shadow {_num(p.get('shadow_mae'))}, coverage "
            f"{_pct(p.get('live_coverage'))} / {_pct(p.get('shadow_coverage'))}, PHQ-9 MAE "
            f"{_num(p.get('phq9_live_mae'))} / {_num(p.get('phq9_shadow_mae'))}"
        )
    if twin.get("total_state_bytes"):
        lines.append(f"state {twin['total_state_bytes']} bytes (shadow included)")
    return lines


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value:.0%}"


def format_versions(docs: list[dict[str, Any]]) -> list[str]:
    """One line per stored snapshot (newest first as given): version, when, model version id,
    days learned, model source and the progressive-validation metrics. Snapshots written before
    model version ids were recorded show ``unrecorded``."""
    lines = [
        f"{'version':>7}  {'created':<19}  {'model version id':<30}  {'days':>4}  {'source':<16}  "
        f"{'MAE':>5}  {'pers.':>5}  {'cover':>5}  {'PHQ-9':>5}  {'pers.':>5}"
    ]
    for doc in docs:
        m = doc.get("metrics") or {}
        created: Any = doc.get("created_at")
        when = created.strftime("%Y-%m-%d %H:%M:%S") if created is not None else "-"
        coverage = m.get("interval_coverage")
        lines.append(
            f"{doc.get('version', '-'):>7}  {when:<19}  {doc.get('model_version_id') or 'unrecorded':<30}  "
            f"{doc.get('samples_seen', '-'):>4}  {doc.get('model_source') or '-':<16}  "
            f"{_num(m.get('forecast_mae')):>5}  {_num(m.get('persistence_mae')):>5}  "
            f"{'-' if coverage is None else f'{coverage:.0%}':>5}  "
            f"{_num(m.get('phq9_forecast_mae')):>5}  {_num(m.get('phq9_persistence_mae')):>5}"
        )
    return lines


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}"


def _records(settings: Settings, topic: str) -> list[dict[str, Any]]:
    """Every record now in the registry topic ``topic``, decoded."""
    # lazy: the Kafka consumer and the Avro codec take ~40 ms to import
    from novamind.platform.topicreader import read_all
    from schemas.codec import AvroCodec

    codec = AvroCodec.from_settings(settings.kafka)
    return [codec.decode_dict(m.value())[1] for m in read_all(settings.kafka, settings.kafka.topic(topic))]


def run_dlq(args: argparse.Namespace, settings: Settings) -> int:
    letters = [
        d
        for d in _records(settings, TopicName.PIPELINE_DEADLETTER)
        if (not args.reason or d["error_class"] == args.reason)
        and (not args.topic or d["source_topic"] in (args.topic, settings.kafka.topic(args.topic)))
    ][: args.limit]
    if args.action == "inspect":
        print(f"by reason: {dict(Counter(d['error_class'] for d in letters).most_common())}")
        for d in letters:
            print(
                f"{d['first_seen_time']:%Y-%m-%d %H:%M:%S}  {d['source_topic']}[{d['source_partition']}]@"
                f"{d['source_offset']}  {d['error_class']}: {d['reason']}  ({len(d['original_value'])} bytes)"
            )
        return 0
    return _replay(letters, settings)


def _replay(letters: list[dict[str, Any]], settings: Settings) -> int:
    """Send each dead letter's original key and value back to its source topic."""
    # lazy: the Kafka producer takes ~50 ms to import (structlog with it); `dlq inspect` goes without
    from novamind.platform.producer import EventProducer

    producer = EventProducer(kafka=settings.kafka, client_id="dlq-replay")
    for d in letters:
        producer.send(d["source_topic"], key=d["original_key"] or b"", value=d["original_value"])
    unacknowledged = producer.flush()
    print(f"replayed {len(letters) - unacknowledged} of {len(letters)} dead letters to their source topics")
    return 0 if unacknowledged == 0 else 1


def run_consume(args: argparse.Namespace, settings: Settings) -> int:
    for record in _records(settings, args.topic)[: args.limit]:
        print(json.dumps(record, default=str))
    return 0
