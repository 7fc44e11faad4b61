"""``make demo``: the main job on the local services, end to end, with a readable summary.

Creates a fresh, isolated set of topics and a database for this run (so running it twice is
safe), starts two worker replicas, publishes a simulated cohort, shows progress until the
workers have caught up, then summarises twins, alerts, data quality and dead letters and
draws one patient's twin trajectory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from novamind.lag import group_lag
from novamind.settings import PROJECT_ROOT, Settings
from novamind.topicadmin import ensure_topics
from novamind.topicreader import read_all

OUTPUT = PROJECT_ROOT / "demo-output"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument("--patients", type=int, default=20)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--replicas", type=int, default=2, help="worker replicas (default 2)")
    args = parser.parse_args(argv)

    run = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
    base = Settings()
    kafka = base.kafka.model_copy(update={"topic_prefix": f"demo-{run}."})
    mongo = base.mongo.model_copy(update={"database": f"novamind_demo_{run}"})
    settings = base.model_copy(update={"kafka": kafka, "mongo": mongo})
    OUTPUT.mkdir(exist_ok=True)
    _step(f"topics with prefix {kafka.topic_prefix!r}")
    ensure_topics(kafka)

    env = {
        **os.environ,
        "NOVAMIND_KAFKA__TOPIC_PREFIX": kafka.topic_prefix,
        "NOVAMIND_MONGO__DATABASE": mongo.database,
        "NOVAMIND_LOG_FORMAT": "json",
    }
    workers = [_start_worker(env, index) for index in range(args.replicas)]
    try:
        _step(f"simulating {args.patients} patients x {args.days} days and publishing them")
        started = time.monotonic()
        published = (
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "novamind.cli",
                    "simulate",
                    "--patients",
                    str(args.patients),
                    "--days",
                    str(args.days),
                ],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        print(f"  {published}")
        _step(f"{args.replicas} worker replicas processing (logs in {OUTPUT})")
        _wait_for_workers(settings, workers)
        print(f"  caught up in {time.monotonic() - started:.0f}s")
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(timeout=60)
    _summary(settings)
    return 0


def _step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def _start_worker(env: dict[str, str], index: int) -> subprocess.Popen[bytes]:
    log = (OUTPUT / f"worker-{index}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "novamind.cli", "worker", "--web-port", str(6066 + index)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=PROJECT_ROOT,
    )


def _wait_for_workers(
    settings: Settings, workers: list[subprocess.Popen[bytes]], timeout_s: float = 900
) -> None:
    from workers.app import APP_ID
    from workers.runtime.worker import SOURCE_TOPICS

    topics = [settings.kafka.topic(t) for t in (*SOURCE_TOPICS, "twin-inputs")]
    group = settings.kafka.topic(APP_ID)
    deadline = time.monotonic() + timeout_s
    quiet = 0
    while time.monotonic() < deadline:
        if any(w.poll() is not None for w in workers):
            raise SystemExit(f"a worker exited; see {OUTPUT}/worker-*.log")
        lag = sum(group_lag(settings.kafka, group, topics).values())
        print(f"\r  records still to process: {lag:>9,}", end="", flush=True)
        quiet = quiet + 1 if lag == 0 else 0
        if quiet >= 3:
            print()
            return
        time.sleep(2)
    raise SystemExit(f"the workers did not catch up within {timeout_s:.0f}s")


def _summary(settings: Settings) -> None:
    from schemas.codec import AvroCodec

    codec = AvroCodec.from_settings(settings.kafka)

    def records(topic: str) -> list[dict[str, Any]]:
        return [
            codec.decode_dict(m.value())[1] for m in read_all(settings.kafka, settings.kafka.topic(topic))
        ]

    db: Any = MongoClient(settings.mongo.uri.get_secret_value())[settings.mongo.database]
    twins = list(db.twins.find({}, {"state": 0}))
    alerts = records("twin-alerts")
    letters = records("pipeline-deadletter")
    features = _latest_features(records("patient-daily-features"))
    observed = [f for f in features if not f["missing"]]

    _step("summary")
    print(
        f"  twins: {len(twins)}  by risk level: {dict(Counter(t['risk_level'] for t in twins).most_common())}"
    )
    print(f"  model source: {dict(Counter(t['model_source'] for t in twins))}")
    print(f"  alerts: {len(alerts)}  by type: {dict(Counter(a['alert_type'] for a in alerts).most_common())}")
    if observed:
        meets = sum(f["meets_quality_standards"] for f in observed)
        print(
            f"  patient-days: {len(features)} ({len(features) - len(observed)} missing), "
            f"meeting quality standards: {meets / len(observed):.0%}, "
            f"mean completeness {sum(f['completeness'] for f in observed) / len(observed):.2f}, "
            f"mean outlier share {sum(f['outlier_share'] for f in observed) / len(observed):.3f}"
        )
    reasons = dict(Counter(d["error_class"] for d in letters).most_common())
    print(f"  dead letters: {len(letters)}  by reason: {reasons}")
    if twins:
        patient = max(twins, key=lambda t: t["twin_version"])["_id"]
        png = OUTPUT / "twin-trajectory.png"
        plot_trajectory(patient, features, records("twin-updates"), alerts, png)
        print(f"  trajectory of {patient}: {png}")
    prefix = settings.kafka.topic_prefix
    _step("explore further")
    print(
        f"  export NOVAMIND_KAFKA__TOPIC_PREFIX={prefix} NOVAMIND_MONGO__DATABASE={settings.mongo.database}"
    )
    print(f"  .venv/bin/novamind twin plot {twins[0]['_id'] if twins else 'PSEUDONYM'} -o twin.png")
    print(f"  .venv/bin/novamind twin show {twins[0]['_id'] if twins else 'PSEUDONYM'}")
    print("  .venv/bin/novamind dlq inspect --limit 10")
    print("  .venv/bin/novamind consume twin-updates --limit 5")


def _latest_features(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    latest: dict[tuple[str, Any], dict[str, Any]] = {}
    for record in records:
        key = (record["patient_id"], record["date"])
        if key not in latest or record["revision"] >= latest[key]["revision"]:
            latest[key] = record
    return list(latest.values())


def plot_trajectory(
    patient: str,
    features: list[dict[str, Any]],
    updates: list[dict[str, Any]],
    alerts: list[dict[str, Any]],
    out: Path,
) -> None:
    """Daily severity, PHQ-9, the twin's forecasts and its alerts for one patient."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    days = sorted((f for f in features if f["patient_id"] == patient), key=lambda f: f["date"])
    mine = [u for u in updates if u["patient_id"] == patient]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    top.plot(
        [f["date"] for f in days], [f["symptom_severity_mean"] for f in days], ".-", label="daily severity"
    )
    top.plot([u["as_of_date"] for u in mine], [u["forecast_severity"] for u in mine], "--", label="forecast")
    for alert in (a for a in alerts if a["patient_id"] == patient):
        top.axvline(alert["event_time"].date(), color="red", alpha=0.4)
    top.set_ylabel("severity 0-10")
    top.legend(loc="upper left")
    phq = [(f["date"], f["phq9_total"]) for f in days if f["phq9_total"] is not None]
    bottom.plot([d for d, _ in phq], [v for _, v in phq], "o-", label="PHQ-9")
    bottom.plot(
        [u["as_of_date"] for u in mine], [u["forecast_phq9"] for u in mine], "--", label="PHQ-9 forecast"
    )
    bottom.set_ylabel("PHQ-9 total")
    bottom.legend(loc="upper left")
    fig.suptitle(f"Twin trajectory of {patient} (red: alerts)")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
