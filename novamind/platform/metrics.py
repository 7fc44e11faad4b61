"""Prometheus metrics of every NOVAMIND process: the one place they are declared.

Workers, the intake and connectors update these module-level metrics through the helpers
below and expose them at ``/metrics``: a process with an aiohttp web server mounts
:func:`metrics_handler`, one without calls :func:`start_http_exporter`. The alerting rules
(``deploy/prometheus/alerts.yml``) and the dashboard (``deploy/grafana/``) use these names; a
test fails when one of them refers to a metric that is not declared here.

Label values are bounded sets, never patient data: ``topic`` is the registry name without the
environment prefix (``wearable-biometrics``), ``reason`` the dead-letter error class,
``step`` one of :data:`STEPS`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from enum import StrEnum

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)


class Step(StrEnum):
    """Timed units of work (label ``step`` of :data:`STEP_SECONDS`)."""

    DECODE_FOLD = "decode_fold"  # decode, validate and fold a batch into the windows
    PUBLISH = "publish"  # produce a batch's outputs and wait for the acknowledgements
    CHECKPOINT = "checkpoint"  # commit offsets (or the Kafka transaction) of a batch
    TWIN_APPLY = "twin_apply"  # apply a batch of twin inputs with the pure twin functions
    TWIN_STORE = "twin_store"  # write the batch's twins to MongoDB
    RESTORE = "restore"  # rebuild a partition's state after it was assigned
    STATE_WRITE = "state_write"  # write a committed batch's state parts to the local stores


STEPS = frozenset(Step)


class ConnectorOutcome(StrEnum):
    """What became of a record a connector read (label ``outcome``)."""

    PRODUCED = "produced"  # acknowledged by Kafka
    INVALID = "invalid"  # rejected with a typed error before producing
    FAILED = "failed"  # Kafka did not acknowledge it


class MetricsError(Exception):
    """The metrics endpoint could not be served."""


# Seconds from 1 ms to 2 min: a decode batch takes milliseconds, a restore minutes.
STEP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)

EVENTS_IN = Counter("novamind_events_in_total", "Records read from a topic.", ["topic"])
EVENTS_OUT = Counter("novamind_events_out_total", "Records produced to a topic and acknowledged.", ["topic"])
DEAD_LETTERS = Counter(
    "novamind_dead_letters_total",
    "Records sent to pipeline-deadletter, by source topic and error class.",
    ["topic", "reason"],
)
LATE_EVENTS = Counter(
    "novamind_late_events_total", "Events too far behind the patient's watermark to fold in.", ["topic"]
)
STEP_SECONDS = Histogram(
    "novamind_step_seconds", "Duration of a unit of work, by step.", ["step"], buckets=STEP_BUCKETS
)
CONSUMER_LAG = Gauge(
    "novamind_consumer_lag",
    "Records of an assigned partition not yet processed by this replica.",
    ["topic", "partition"],
)
ASSIGNED_PARTITIONS = Gauge("novamind_assigned_partitions", "Partitions assigned to this replica.")
TWIN_UPDATES = Counter("novamind_twin_updates_total", "Twin updates stored and published.")
TWIN_ALERTS = Counter(
    "novamind_twin_alerts_total",
    "Clinical alerts published, by type and severity.",
    ["alert_type", "severity"],
)
MODEL_VERSIONS = Counter("novamind_model_versions_total", "Twin model versions stored.")
TWIN_SHADOW_PAIRS = Counter(
    "novamind_twin_shadow_pairs_total",
    "Next-day severity forecasts scored for both a live twin and its shadow (same target).",
    ["shadow_version"],
)
TWIN_SHADOW_ABS_ERROR = Counter(
    "novamind_twin_shadow_abs_error_total",
    "Summed absolute errors of those paired forecasts by role (live, shadow); "
    "MAE = rate(this) / rate(novamind_twin_shadow_pairs_total).",
    ["shadow_version", "role"],
)
TWIN_VERSION_CHANGES = Counter(
    "novamind_twin_version_changes_total",
    "Twins moved to another model version: promoted (took their shadow) or restored (rollback).",
    ["kind"],
)
STATE_WRITES = Counter(
    "novamind_window_state_writes_total",
    "Patients' window-state writes put in a transaction: a journal of the samples since the last"
    " snapshot, or a snapshot of the changed parts.",
    ["kind"],
)
STATE_HELD = Gauge(
    "novamind_window_state_held_patients",
    "Patients whose journaled samples are folded but not written yet (a restore re-reads them).",
)
RESTORE_RECORDS = Counter(
    "novamind_state_restore_records_total", "State records restored after an assignment.", ["partition"]
)
RESTORE_REMAINING = Gauge(
    "novamind_state_restore_remaining", "State records still to restore; 0 when recovered.", ["partition"]
)
PIPELINE_ALERTS = Counter(
    "novamind_pipeline_alerts_total", "pipeline-alerts events raised by a failing step.", ["step"]
)
CONNECTOR_RECORDS = Counter(
    "novamind_connector_records_total",
    "Records handled by a source connector, by outcome.",
    ["connector", "outcome"],
)


def _step(step: str) -> str:
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}; expected one of {', '.join(sorted(STEPS))}")
    return str(step)


# ---------------------------------------------------------------- helpers
def record_events_in(topic: str, count: int = 1) -> None:
    EVENTS_IN.labels(topic=topic).inc(count)


def record_events_out(topic: str, count: int = 1) -> None:
    EVENTS_OUT.labels(topic=topic).inc(count)


def record_dead_letter(topic: str, reason: str, count: int = 1) -> None:
    """``reason`` is the error class (``TruncatedBody``), never the free-text message."""
    DEAD_LETTERS.labels(topic=topic, reason=reason).inc(count)


def record_late_events(topic: str, count: int = 1) -> None:
    LATE_EVENTS.labels(topic=topic).inc(count)


def observe_step(step: str, seconds: float) -> None:
    STEP_SECONDS.labels(step=_step(step)).observe(seconds)


@contextmanager
def timed(step: str) -> Iterator[None]:
    """Observe the duration of the ``with`` block as ``step``, also when it raises."""
    label = _step(step)
    started = time.perf_counter()
    try:
        yield
    finally:
        STEP_SECONDS.labels(step=label).observe(time.perf_counter() - started)


def set_assignment(lags: Mapping[tuple[str, int], int]) -> None:
    """Replace the lag of every assigned (topic, partition); partitions no longer assigned vanish."""
    CONSUMER_LAG.clear()
    for (topic, partition), lag in lags.items():
        CONSUMER_LAG.labels(topic=topic, partition=str(partition)).set(max(lag, 0))
    ASSIGNED_PARTITIONS.set(len(lags))


def set_consumer_lag(topic: str, partition: int, lag: int) -> None:
    CONSUMER_LAG.labels(topic=topic, partition=str(partition)).set(max(lag, 0))


def record_twin_updates(count: int = 1) -> None:
    TWIN_UPDATES.inc(count)


def record_twin_alert(alert_type: str, severity: str) -> None:
    TWIN_ALERTS.labels(alert_type=alert_type, severity=severity).inc()


def record_model_versions(count: int = 1) -> None:
    MODEL_VERSIONS.inc(count)


def record_shadow_pairs(shadow_version: str, pairs: int, live_abs: float, shadow_abs: float) -> None:
    """Paired forecasts of a batch: how many, and each role's summed absolute error."""
    if pairs:
        TWIN_SHADOW_PAIRS.labels(shadow_version=shadow_version).inc(pairs)
        TWIN_SHADOW_ABS_ERROR.labels(shadow_version=shadow_version, role="live").inc(live_abs)
        TWIN_SHADOW_ABS_ERROR.labels(shadow_version=shadow_version, role="shadow").inc(shadow_abs)


def record_twin_version_change(kind: str, count: int = 1) -> None:
    """``kind``: ``promoted`` or ``restored``."""
    if kind not in ("promoted", "restored"):
        raise ValueError(f"unknown twin version change {kind!r}")
    if count:
        TWIN_VERSION_CHANGES.labels(kind=kind).inc(count)


def record_state_writes(journals: int, snapshots: int, held: int = 0) -> None:
    """A batch's window-state writes: ``journals`` patients wrote their journal alone,
    ``snapshots`` their changed parts; ``held`` patients wait to be written."""
    STATE_HELD.set(held)
    if journals:
        STATE_WRITES.labels(kind="journal").inc(journals)
    if snapshots:
        STATE_WRITES.labels(kind="snapshot").inc(snapshots)


def record_restore(partition: int, restored: int, remaining: int) -> None:
    """Progress of a partition's state recovery: ``restored`` more records, ``remaining`` to go."""
    RESTORE_RECORDS.labels(partition=str(partition)).inc(restored)
    RESTORE_REMAINING.labels(partition=str(partition)).set(max(remaining, 0))


def forget_restore(partition: int) -> None:
    """Drop a revoked partition's restore gauge, so an unfinished restore does not look stuck."""
    with suppress(KeyError):
        RESTORE_REMAINING.remove(str(partition))


def record_pipeline_alert(step: str) -> None:
    PIPELINE_ALERTS.labels(step=step).inc()


def record_connector(connector: str, outcome: str, count: int = 1) -> None:
    if outcome not in set(ConnectorOutcome):
        raise ValueError(f"unknown connector outcome {outcome!r}; expected produced, invalid or failed")
    CONNECTOR_RECORDS.labels(connector=connector, outcome=str(outcome)).inc(count)


# ---------------------------------------------------------------- exposition
def exposition(registry: CollectorRegistry = REGISTRY) -> bytes:
    """The Prometheus text exposition of ``registry``."""
    return generate_latest(registry)


def metrics_handler(
    registry: CollectorRegistry = REGISTRY,
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An aiohttp handler serving ``/metrics``: ``app.router.add_get("/metrics", metrics_handler())``."""

    async def handle(request: web.Request) -> web.Response:
        return web.Response(body=exposition(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    return handle


def start_http_exporter(
    port: int,
    *,
    addr: str = "0.0.0.0",  # noqa: S104  # scraped from outside the container
    registry: CollectorRegistry = REGISTRY,
) -> int:
    """Serve ``/metrics`` on ``addr:port`` from a daemon thread; returns the bound port (for ``port=0``)."""
    try:
        server, _ = start_http_server(port, addr=addr, registry=registry)
    except OSError as exc:
        raise MetricsError(f"cannot serve metrics on {addr}:{port}: {exc.strerror or exc}") from exc
    return int(server.server_port)
