"""``novamind simulate``: a deterministic synthetic cohort, to topics or vendor files."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import Any

from novamind.platform.exceptions import UsageError
from novamind.platform.settings import Settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="simulate a cohort and publish it to the source topics",
        description="Generate a realistic synthetic cohort (hidden mood truth, wearables, reports, "
        "medication, late backfills, a small share of bad records) and publish it.",
    )
    parser.add_argument("--patients", type=int, default=20, help="number of patients (default 20)")
    parser.add_argument("--days", type=int, default=60, help="days per patient (default 60)")
    parser.add_argument("--seed", type=int, default=7, help="random seed; same seed, same cohort")
    parser.add_argument(
        "--start", type=dt.date.fromisoformat, default=dt.date(2026, 1, 5), help="first day (YYYY-MM-DD)"
    )
    parser.add_argument("--rate", type=float, default=None, help="records/s (default: as fast as possible)")
    parser.add_argument("--bad-share", type=float, default=0.005, help="share of deliberately bad records")
    parser.add_argument("--truth", default=None, help="write the hidden truth to this JSON file")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    # lazy: the simulator, the Kafka producer and the Avro codec take ~0.7 s to import
    from connectors.simulator import simulate
    from connectors.simulator.publish import publish
    from novamind.platform.producer import EventProducer
    from schemas.codec import AvroCodec

    if args.patients < 1 or args.days < 1:
        raise UsageError("--patients and --days must be at least 1")
    cohort = simulate(args.patients, args.days, args.seed, args.start, bad_share=args.bad_share)
    producer = EventProducer(kafka=settings.kafka, client_id="simulator")
    summary = publish(
        cohort.deliveries,
        producer=producer,
        codec=AvroCodec.from_settings(settings.kafka),
        topic_name=settings.kafka.topic,
        rate_per_s=args.rate,
    )
    if args.truth:
        with open(args.truth, "w") as out:
            json.dump(cohort.truth, out, default=str)
    print(json.dumps({"patients": args.patients, "days": args.days, **summary}))
    return 0 if summary["unacknowledged"] == 0 else 1
