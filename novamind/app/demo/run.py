"""``make demo``: the stages in order, and the clean-up.

Everything of a run lives under ``demo-output/<timestamp>/`` (vendor files, logs, the
intake's tokens and field key, the PNG) and under its own topic prefix and database. The
worker replicas and the intake are stopped on the way out, also after Ctrl-C, SIGTERM or an
error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, NoReturn

from confluent_kafka import KafkaException
from pymongo.errors import PyMongoError

from connectors.simulator import SimulationResult, simulate
from novamind.app.demo import cleanup, environment, processes, progress, summary
from novamind.app.demo import feed as feeding
from novamind.app.demo.environment import Environment
from novamind.app.demo.exceptions import DemoError, DemoInterrupted
from novamind.app.demo.feed import Feed, FeedTotals
from novamind.app.demo.plan import DIRECT, FHIR, FITBIT, INTAKE, OPENMHEALTH, plan_rounds, route_totals
from novamind.app.demo.plot import plot_trajectory, require_matplotlib
from novamind.app.demo.processes import Service
from novamind.platform.exceptions import UsageError
from novamind.platform.logs import configure_logging
from novamind.platform.producer import EventProducer
from novamind.platform.settings import PROJECT_ROOT, Settings
from schemas.codec import AvroCodec
from schemas.topics import SOURCE_TOPICS
from workers.runtime.clients import group_id

OUTPUT = PROJECT_ROOT / "demo-output"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m novamind.app.demo",
        description="Run the pipeline end to end on the local services: a simulated cohort through "
        "the connectors and the intake, worker replicas, then a summary and one twin's trajectory.",
    )
    parser.add_argument("--patients", type=int, default=20, help="simulated patients (default 20)")
    parser.add_argument("--days", type=int, default=60, help="simulated days (default 60)")
    parser.add_argument("--seed", type=int, default=7, help="simulation seed (default 7)")
    parser.add_argument("--replicas", type=int, default=2, help="worker replicas (default 2)")
    parser.add_argument(
        "--clean",
        action="store_true",
        help="remove every earlier run (topics, consumer groups, database, demo-output folder) and exit",
    )
    args = parser.parse_args(argv)
    if args.patients < 1 or args.days < 1 or args.replicas < 1:
        parser.error("--patients, --days and --replicas must be at least 1")

    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    try:
        if args.clean:
            _clean()
        else:
            _run(args)
    except (KeyboardInterrupt, DemoInterrupted):
        print("\nmake demo: interrupted; the workers and the intake are stopped", file=sys.stderr)
        return 130
    except (DemoError, UsageError) as exc:
        print(f"\nmake demo: {exc}", file=sys.stderr)
        return 1
    except (KafkaException, PyMongoError) as exc:
        hint = "are the services up? make services"
        print(f"\nmake demo: {type(exc).__name__}: {exc} ({hint})", file=sys.stderr)
        return 1
    print(f"\ndone in {time.monotonic() - started:.0f}s")
    return 0


def _interrupt(_signum: int, _frame: Any) -> NoReturn:
    raise KeyboardInterrupt


def _step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def _clean() -> None:
    settings = Settings()
    runs = cleanup.find_runs(settings, OUTPUT)
    _step(f"removing {cleanup.describe(runs)}")
    cleanup.remove_runs(settings, runs)
    for run in sorted(runs):
        print(f"  removed demo run {run}")


def _run(args: argparse.Namespace) -> None:
    require_matplotlib()  # the demo ends with a plot: say a missing extra before the run, not after
    run = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
    out = OUTPUT / run
    start = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=args.days + 1)
    cohort = simulate(args.patients, args.days, args.seed, start)
    setup = environment.configure(Settings(), run, out, cohort.patients, replay_days=args.days + 1)
    settings = setup.settings
    configure_logging(settings)
    _step(f"topics with prefix {settings.kafka.topic_prefix!r}")
    created = environment.create_topics(settings)
    print(f"  {created} topics created, {settings.kafka.partitions} partitions per patient topic")

    _step(f"simulating {args.patients} patients x {args.days} days from {start} (seed {args.seed})")
    rounds = plan_rounds(cohort)
    totals = route_totals(rounds)
    defects = sum(1 for d in cohort.deliveries if d["defect"] is not None)
    print(
        f"  {len(cohort.deliveries):,} records: {totals[FITBIT] + totals[OPENMHEALTH]:,} wearable samples "
        f"for vendor files, {totals[INTAKE]:,} reports for the intake, {totals[FHIR]:,} EHR records, "
        f"{totals[DIRECT]:,} to publish directly ({defects:,} of them deliberately defective)"
    )

    logs = out / "logs"
    logs.mkdir(parents=True)
    with ExitStack() as stack:
        _step(f"starting {args.replicas} worker replicas and the intake (logs in {_rel(logs)})")
        services: list[Service] = []  # stopped on the way out, whatever happens
        stack.callback(processes.stop_all, services)
        workers = processes.start_workers(args.replicas, env=setup.env, logs=logs)
        services += workers
        intake = processes.start_intake(env=setup.env, logs=logs)
        services.append(intake)
        processes.wait_until(lambda: processes.intake_ready(intake), services=services, what="the intake")
        expected = 4 * settings.kafka.partitions  # three source topics and twin-inputs
        processes.wait_until(
            lambda: sum(processes.assigned_partitions(workers) or [0]) == expected,
            services=services,
            what=f"{args.replicas} worker replicas owning all {expected} partitions",
        )
        owned = processes.assigned_partitions(workers) or []
        print(f"  replicas own {' + '.join(map(str, owned))} partitions; intake on port {intake.port}")

        feed = _feed(setup, cohort, out, intake.port, services, stack)
        _step(
            f"feeding {len(rounds)} UTC days: vendor files through novamind connect, reports through "
            "the intake, the rest straight to the topics; the workers catch up after each day"
        )
        progress.feed_rounds(feed, rounds)
        _step("workers finishing the twin inputs")
        progress.catch_up(settings, group_id(settings), services)
    _report(settings, feed.totals, out, [s.log_path for s in services])


def _feed(
    setup: Environment,
    cohort: SimulationResult,
    out: Path,
    port: int,
    services: list[Service],
    stack: ExitStack,
) -> Feed:
    settings = setup.settings
    intake = feeding.IntakeClient(port, setup.tokens)
    stack.callback(intake.close)
    topics = [settings.kafka.topic(t) for t in SOURCE_TOPICS]
    probe = feeding.LagProbe(settings.kafka, group_id(settings), topics)
    stack.callback(probe.close)
    return feeding.Feed(
        result=cohort,
        settings=settings,
        vendor_dir=out / "vendor",
        intake=intake,
        producer=EventProducer(kafka=settings.kafka, client_id="demo-direct"),
        codec=AvroCodec.from_settings(settings.kafka),
        probe=probe,
        services=services,
    )


def _report(settings: Settings, totals: FeedTotals, out: Path, log_paths: list[Path]) -> None:
    results = summary.collect(settings)
    logs, errors = {}, []
    for path in log_paths:
        levels, found = summary.log_levels(path.read_text(errors="replace").splitlines())
        logs[path.stem] = levels
        errors += [f"{path.name}: {line}" for line in found]
    _step("summary")
    for line in summary.summary_lines(results, totals, logs):
        print(f"  {line}")
    for line in errors[:10]:
        print(f"  ! {line}")
    patient = summary.pick_patient(results.twins, results.alerts)
    if patient is not None:
        png = out / "twin-trajectory.png"
        plot_trajectory(patient, results.features, results.updates, results.alerts, png)
        print(f"  {'trajectory':<13}{patient}: {_rel(png)}")
    _step("explore further (in this shell)")
    for command in summary.explore_commands(settings, patient):
        print(f"  {command}")
    print(f"  vendor files: {_rel(out / 'vendor')}   logs: {_rel(out / 'logs')}")
    _mention_earlier_runs(settings, out.name)


def _mention_earlier_runs(settings: Settings, this_run: str) -> None:
    earlier = {run: left for run, left in cleanup.find_runs(settings, OUTPUT).items() if run != this_run}
    if earlier:
        held = cleanup.describe(earlier)
        print(f"  earlier runs: {held} (make demo-clean removes every run, this one included)")


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
