"""`novamind status` figures and report from plain data: lag, throughput, replicas, dead letters."""

from __future__ import annotations

import json

import pytest

from novamind.app.status import (
    WORKERS_GROUP,
    GroupView,
    Member,
    Sample,
    build_status,
    dead_letter_figures,
    group_topics,
    partition_lags,
    render,
    to_json,
    topic_rates,
    worker_source_topics,
)

WB, PR = "env.wearable-biometrics", "env.patient-reports"
GROUP = f"env.{WORKERS_GROUP}"


def sample_factory(taken_at: float, ends: dict, committed: dict, lows: dict | None = None) -> Sample:
    lows = lows or {}
    return Sample(
        taken_at=taken_at,
        watermarks={tp: (lows.get(tp, 0), end) for tp, end in ends.items()},
        committed={GROUP: committed},
    )


def replica(client_id: str, *partitions: tuple[str, int]) -> Member:
    return Member(member_id=f"{client_id}-id", client_id=client_id, host="/10.0.0.7", partitions=partitions)


def test_workers_group_reports_its_source_topics_even_before_it_commits() -> None:
    assert set(worker_source_topics()) == {"wearable-biometrics", "patient-reports", "ehr-clinical-events"}
    view = GroupView(group=GROUP, state="EMPTY")
    assert group_topics(GROUP, view, {}, prefix="env.") == {
        "env.wearable-biometrics",
        "env.patient-reports",
        "env.ehr-clinical-events",
    }
    other = GroupView(group="env.novamind-exporter", state="STABLE", members=(replica("x", ("env.t", 0)),))
    assert group_topics(other.group, other, {("env.u", 1): 5}, prefix="env.") == {"env.t", "env.u"}


def test_partition_lag_is_end_minus_committed_or_the_retained_backlog() -> None:
    view = GroupView(group=GROUP, state="STABLE", members=(replica("worker-a", (WB, 0)),))
    watermarks = {(WB, 0): (0, 100), (WB, 1): (40, 90), (WB, 2): (50, 60), (PR, 0): (0, 7)}
    committed = {(WB, 0): 70, (WB, 2): 10}  # partition 2's committed records were deleted by retention
    rows = {(p.topic, p.partition): p for p in partition_lags(view, [WB], watermarks, committed)}
    assert set(rows) == {(WB, 0), (WB, 1), (WB, 2)}  # only the topics asked for
    assert (rows[(WB, 0)].lag, rows[(WB, 0)].committed, rows[(WB, 0)].owner) == (30, 70, "worker-a")
    assert (rows[(WB, 1)].lag, rows[(WB, 1)].committed, rows[(WB, 1)].owner) == (50, None, None)
    assert rows[(WB, 2)].lag == 10


def test_rates_are_produced_and_committed_records_per_second() -> None:
    first = sample_factory(100.0, {(WB, 0): 1000, (WB, 1): 500, (PR, 0): 10}, {(WB, 0): 900, (WB, 1): 500})
    second = sample_factory(104.0, {(WB, 0): 1400, (WB, 1): 700, (PR, 0): 10}, {(WB, 0): 1300, (WB, 1): 520})
    rates = {r.topic: r for r in topic_rates(first, second, GROUP, [WB, PR])}
    assert rates[WB].produced_per_s == 150.0  # (400 + 200) / 4 s
    assert rates[WB].consumed_per_s == 105.0  # (400 + 20) / 4 s
    assert rates[PR].produced_per_s == 0.0
    assert rates[PR].consumed_per_s is None  # never committed: no consumption rate, not zero
    with pytest.raises(ValueError, match="after the first"):
        topic_rates(second, first, GROUP, [WB])


def test_status_totals_lag_per_topic_and_group() -> None:
    view = GroupView(
        group=GROUP,
        state="STABLE",
        members=(replica("worker-a", (WB, 0)), replica("worker-b", (WB, 1), (PR, 0))),
    )
    first = sample_factory(0.0, {(WB, 0): 10, (WB, 1): 10, (PR, 0): 3}, {(WB, 0): 10, (WB, 1): 4})
    second = sample_factory(2.0, {(WB, 0): 30, (WB, 1): 12, (PR, 0): 3}, {(WB, 0): 25, (WB, 1): 12})
    status = build_status([view], first, second, prefix="env.")
    (group,) = status.groups
    assert status.interval_s == 2.0
    assert group.lag_by_topic() == {WB: 5, PR: 3}
    assert group.total_lag == 8
    assert {r.topic: r.produced_per_s for r in group.rates} == {WB: 11.0, PR: 0.0}
    one_sample = build_status([view], second, prefix="env.")
    assert one_sample.interval_s is None and one_sample.groups[0].rates == ()
    assert one_sample.groups[0].total_lag == 8


def test_dead_letters_count_by_reason_and_source() -> None:
    topic = "env.pipeline-deadletter"
    first = Sample(taken_at=0.0, watermarks={(topic, 0): (0, 10), (topic, 1): (5, 8)}, committed={})
    second = Sample(taken_at=5.0, watermarks={(topic, 0): (0, 20), (topic, 1): (5, 8)}, committed={})
    records = [
        {"error_class": "LateEvent", "source_topic": WB},
        {"error_class": "LateEvent", "source_topic": WB},
        {"error_class": "TruncatedBody", "source_topic": PR},
    ]
    figures = dead_letter_figures(topic, first, second, records, undecodable=1)
    assert figures.retained == 23  # 20 + (8 - 5)
    assert figures.per_s == 2.0
    assert figures.read == 4
    assert list(figures.by_reason.items()) == [("LateEvent", 2), ("TruncatedBody", 1)]
    assert figures.by_source == {WB: 2, PR: 1}
    unread = dead_letter_figures(topic, first)
    assert (unread.retained, unread.per_s, unread.read) == (13, None, None)


def _report_status():
    view = GroupView(
        group=GROUP, state="STABLE", members=(replica("worker-b", (WB, 1)), replica("worker-a", (WB, 0)))
    )
    first = sample_factory(0.0, {(WB, 0): 1000, (WB, 1): 50}, {(WB, 0): 400, (WB, 1): 50})
    second = sample_factory(5.0, {(WB, 0): 1500, (WB, 1): 50}, {(WB, 0): 900, (WB, 1): 50})
    dead = dead_letter_figures(
        "env.pipeline-deadletter",
        Sample(taken_at=0.0, watermarks={("env.pipeline-deadletter", 0): (0, 2)}, committed={}),
        records=[{"error_class": "OutOfRange", "source_topic": WB}] * 2,
    )
    return build_status([view], first, second, prefix="env.", dead_letters=dead)


def test_report_shows_replicas_topic_lag_lagging_partitions_and_dead_letters() -> None:
    text = render(_report_status())
    lines = text.splitlines()
    assert lines[0] == f"group {GROUP}   state STABLE   replicas 2   total lag 600"
    replicas = [line.split()[0] for line in lines if line.strip().startswith("worker-")]
    assert replicas == ["worker-a", "worker-b"]  # sorted by client id
    assert any(line.split() == [WB, "600", "100.0", "100.0"] for line in lines)
    assert any(line.split() == [WB, "0", "1,500", "900", "600", "worker-a"] for line in lines)
    assert not any(line.split()[:2] == [WB, "1"] for line in lines)  # no lag: left out
    assert "(1 partitions without lag not shown: --all-partitions)" in text
    assert "by reason  OutOfRange 2" in text
    everything = render(_report_status(), all_partitions=True)
    assert any(line.split() == [WB, "1", "50", "50", "0", "worker-b"] for line in everything.splitlines())


def test_report_of_a_group_without_replicas_or_offsets() -> None:
    view = GroupView(group="env.novamind-other", state="DEAD")
    text = render(build_status([view], Sample(taken_at=0.0, watermarks={}, committed={}), prefix="env."))
    assert "no replicas in the group" in text
    assert "no committed offsets and no assigned partitions" in text
    assert render(build_status([], Sample(taken_at=0.0, watermarks={}, committed={}))) == (
        "no consumer groups found\n"
    )


def test_json_carries_every_figure() -> None:
    data = json.loads(json.dumps(to_json(_report_status())))
    (group,) = data["groups"]
    assert data["interval_s"] == 5.0
    assert (group["group"], group["total_lag"], group["lag_by_topic"]) == (GROUP, 600, {WB: 600})
    assert {m["client_id"] for m in group["members"]} == {"worker-a", "worker-b"}
    assert group["members"][1]["partitions"] == [{"topic": WB, "partition": 0}]
    assert len(group["partitions"]) == 2  # every partition, also those without lag
    assert group["partitions"][0] == {
        "topic": WB,
        "partition": 0,
        "end": 1500,
        "committed": 900,
        "lag": 600,
        "owner": "worker-a",
    }
    assert group["throughput"] == [{"topic": WB, "produced_per_s": 100.0, "consumed_per_s": 100.0}]
    assert data["dead_letters"]["by_reason"] == {"OutOfRange": 2}
