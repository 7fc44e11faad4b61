"""The metrics module: names, labels and values as Prometheus scrapes them (text exposition)."""

from __future__ import annotations

import urllib.request

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from novamind.platform import metrics

EXPECTED_METRICS = {
    "novamind_events_in": ("counter", {"topic"}),
    "novamind_events_out": ("counter", {"topic"}),
    "novamind_dead_letters": ("counter", {"topic", "reason"}),
    "novamind_late_events": ("counter", {"topic"}),
    "novamind_step_seconds": ("histogram", {"step"}),
    "novamind_consumer_lag": ("gauge", {"topic", "partition"}),
    "novamind_assigned_partitions": ("gauge", set()),
    "novamind_twin_updates": ("counter", set()),
    "novamind_twin_alerts": ("counter", {"alert_type", "severity"}),
    "novamind_model_versions": ("counter", set()),
    "novamind_twin_shadow_pairs": ("counter", {"shadow_version"}),
    "novamind_twin_shadow_abs_error": ("counter", {"shadow_version", "role"}),
    "novamind_twin_version_changes": ("counter", {"kind"}),
    "novamind_window_state_writes": ("counter", {"kind"}),
    "novamind_window_state_held_patients": ("gauge", set()),
    "novamind_state_restore_records": ("counter", {"partition"}),
    "novamind_state_restore_remaining": ("gauge", {"partition"}),
    "novamind_pipeline_alerts": ("counter", {"step"}),
    "novamind_connector_records": ("counter", {"connector", "outcome"}),
}


def scrape(text: str | None = None) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """{(sample name, labels): value} of the default registry's exposition."""
    text = text if text is not None else metrics.exposition().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_every_declared_metric_is_exposed_with_its_type_and_labels() -> None:
    # Touch each labelled metric once so its family has samples to show labels.
    metrics.record_events_in("t-shape")
    metrics.record_events_out("t-shape")
    metrics.record_dead_letter("t-shape", "Shape")
    metrics.record_late_events("t-shape")
    metrics.observe_step(metrics.Step.PUBLISH, 0.01)
    metrics.set_consumer_lag("t-shape", 0, 1)
    metrics.record_twin_alert("ITEM9_SAFETY", "CRITICAL")
    metrics.record_restore(0, 0, 0)
    metrics.record_pipeline_alert("shape")
    metrics.record_connector("shape", "produced", 0)
    metrics.record_shadow_pairs("shape", 1, 0.5, 0.4)
    metrics.record_twin_version_change("restored")
    metrics.record_state_writes(1, 1)

    families = {f.name: f for f in text_string_to_metric_families(metrics.exposition().decode())}
    # The client also exposes each counter's creation time as a `<name>_created` gauge.
    novamind = {n for n in families if n.startswith("novamind_") and not n.endswith("_created")}
    assert novamind == set(EXPECTED_METRICS)
    for name, (kind, labels) in EXPECTED_METRICS.items():
        family = families[name]
        assert family.type == kind, name
        own = {key for s in family.samples for key in s.labels} - {"le"}
        assert own == labels, name


def test_counters_add_up_per_label_set() -> None:
    before = scrape()
    metrics.record_events_in("wearable-biometrics", 120)
    metrics.record_events_in("wearable-biometrics", 5)
    metrics.record_events_in("patient-reports")
    metrics.record_events_out("twin-inputs", 40)
    metrics.record_dead_letter("wearable-biometrics", "LateEvent", 3)
    metrics.record_dead_letter("patient-reports", "TruncatedBody")
    metrics.record_late_events("wearable-biometrics", 3)
    metrics.record_twin_updates(7)
    metrics.record_twin_alert("ITEM9_SAFETY", "CRITICAL")
    metrics.record_model_versions(2)
    metrics.record_pipeline_alert("twin_store")
    metrics.record_connector("wearables", metrics.ConnectorOutcome.PRODUCED, 50)
    metrics.record_connector("wearables", "invalid", 2)
    after = scrape()

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("novamind_events_in_total", topic="wearable-biometrics") == 125
    assert delta("novamind_events_in_total", topic="patient-reports") == 1
    assert delta("novamind_events_out_total", topic="twin-inputs") == 40
    assert delta("novamind_dead_letters_total", topic="wearable-biometrics", reason="LateEvent") == 3
    assert delta("novamind_dead_letters_total", topic="patient-reports", reason="TruncatedBody") == 1
    assert delta("novamind_late_events_total", topic="wearable-biometrics") == 3
    assert delta("novamind_twin_updates_total") == 7
    assert delta("novamind_twin_alerts_total", alert_type="ITEM9_SAFETY", severity="CRITICAL") == 1
    assert delta("novamind_model_versions_total") == 2
    assert delta("novamind_pipeline_alerts_total", step="twin_store") == 1
    assert delta("novamind_connector_records_total", connector="wearables", outcome="produced") == 50
    assert delta("novamind_connector_records_total", connector="wearables", outcome="invalid") == 2


def test_timed_observes_the_block_even_when_it_raises() -> None:
    before = scrape()
    with metrics.timed(metrics.Step.TWIN_APPLY):
        pass
    with pytest.raises(RuntimeError), metrics.timed("twin_apply"):
        raise RuntimeError("step failed")
    after = scrape()
    count = "novamind_step_seconds_count"
    assert value(after, count, step="twin_apply") - value(before, count, step="twin_apply") == 2
    assert value(after, "novamind_step_seconds_sum", step="twin_apply") >= value(
        before, "novamind_step_seconds_sum", step="twin_apply"
    )
    # Both blocks are fast: they land in the 1 s bucket (buckets are cumulative).
    bucket = "novamind_step_seconds_bucket"
    fast = value(after, bucket, step="twin_apply", le="1.0") - value(
        before, bucket, step="twin_apply", le="1.0"
    )
    assert fast == 2


def test_unknown_steps_and_outcomes_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown step 'decode'"):
        metrics.observe_step("decode", 0.1)
    with pytest.raises(ValueError, match="unknown step"), metrics.timed("persist"):
        pass
    with pytest.raises(ValueError, match="unknown connector outcome 'ok'"):
        metrics.record_connector("ehr", "ok")


def test_assignment_replaces_the_lag_gauges() -> None:
    metrics.set_assignment(
        {("wearable-biometrics", 0): 10, ("wearable-biometrics", 1): 0, ("twin-inputs", 0): -3}
    )
    samples = scrape()
    assert value(samples, "novamind_consumer_lag", topic="wearable-biometrics", partition="0") == 10
    assert value(samples, "novamind_consumer_lag", topic="twin-inputs", partition="0") == 0  # never negative
    assert value(samples, "novamind_assigned_partitions") == 3

    metrics.set_assignment({("wearable-biometrics", 1): 4})  # after a rebalance
    samples = scrape()
    lag_series = {labels for (name, labels) in samples if name == "novamind_consumer_lag"}
    assert lag_series == {frozenset({("topic", "wearable-biometrics"), ("partition", "1")})}
    assert value(samples, "novamind_assigned_partitions") == 1


def test_restore_progress_counts_up_and_remaining_goes_down() -> None:
    before = scrape()
    metrics.record_restore(7, restored=500, remaining=1500)
    assert value(scrape(), "novamind_state_restore_remaining", partition="7") == 1500
    metrics.record_restore(7, restored=1500, remaining=0)
    after = scrape()
    restored = value(after, "novamind_state_restore_records_total", partition="7") - value(
        before, "novamind_state_restore_records_total", partition="7"
    )
    assert restored == 2000
    assert value(after, "novamind_state_restore_remaining", partition="7") == 0

    metrics.record_restore(8, restored=10, remaining=90)
    metrics.forget_restore(8)  # revoked mid-restore
    metrics.forget_restore(8)  # twice is harmless
    remaining = {labels for (name, labels) in scrape() if name == "novamind_state_restore_remaining"}
    assert frozenset({("partition", "8")}) not in remaining
    assert frozenset({("partition", "7")}) in remaining


async def test_aiohttp_handler_serves_the_text_exposition() -> None:
    metrics.record_events_in("patient-reports", 2)
    app = web.Application()
    app.router.add_get("/metrics", metrics.metrics_handler())
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/metrics")
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        body = await response.text()
    assert value(scrape(body), "novamind_events_in_total", topic="patient-reports") >= 2


def test_http_exporter_serves_metrics_and_reports_a_taken_port() -> None:
    metrics.record_connector("ehr", "produced", 3)
    port = metrics.start_http_exporter(0, addr="127.0.0.1")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        body = response.read().decode()
    assert value(scrape(body), "novamind_connector_records_total", connector="ehr", outcome="produced") >= 3
    with pytest.raises(metrics.MetricsError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
        metrics.start_http_exporter(port, addr="127.0.0.1")
