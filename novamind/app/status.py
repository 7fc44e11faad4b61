"""``novamind status``: lag per consumer group and partition, replicas, throughput, dead letters.

Pure functions only: two :class:`Sample` s of end and committed offsets taken ``interval``
seconds apart, plus the groups' members, become a :class:`Status` (:func:`build_status`), which
renders as a terminal report (:func:`render`) or JSON (:func:`to_json`).
``novamind.app.statusreader`` reads those figures from the cluster.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from schemas.topics import WORKERS_GROUP, Principal, declared_topics

TopicPartition = tuple[str, int]


class StatusError(Exception):
    """The cluster could not be read."""


@dataclass(frozen=True, kw_only=True)
class Member:
    """One consumer in a group: a worker replica."""

    member_id: str
    client_id: str
    host: str
    partitions: tuple[TopicPartition, ...] = ()


@dataclass(frozen=True, kw_only=True)
class GroupView:
    """What the group coordinator says about a group."""

    group: str
    state: str
    members: tuple[Member, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Sample:
    """Offsets at one moment: per partition (low, high) watermarks, per group committed offsets."""

    taken_at: float  # time.monotonic()
    watermarks: Mapping[TopicPartition, tuple[int, int]]
    committed: Mapping[str, Mapping[TopicPartition, int]]


@dataclass(frozen=True, kw_only=True)
class PartitionLag:
    """End offset minus committed offset. A topic written in Kafka transactions shows a lag of 1
    when fully consumed: the commit marker takes the last offset (as in kafka-consumer-groups)."""

    topic: str
    partition: int
    end: int
    committed: int | None  # None: the group never committed this partition
    lag: int
    owner: str | None  # client id of the member it is assigned to


@dataclass(frozen=True, kw_only=True)
class TopicRate:
    topic: str
    produced_per_s: float
    consumed_per_s: float | None  # None when the group committed nothing in either sample


@dataclass(frozen=True, kw_only=True)
class GroupStatus:
    group: str
    state: str
    members: tuple[Member, ...]
    partitions: tuple[PartitionLag, ...]
    rates: tuple[TopicRate, ...] = ()

    @property
    def total_lag(self) -> int:
        return sum(p.lag for p in self.partitions)

    def lag_by_topic(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for p in self.partitions:
            totals[p.topic] = totals.get(p.topic, 0) + p.lag
        return totals


@dataclass(frozen=True, kw_only=True)
class DeadLetters:
    """The dead-letter topic: its size, rate and (when read) counts by reason and source."""

    topic: str
    retained: int  # offsets between the low and high watermarks (transaction markers included)
    per_s: float | None = None
    read: int | None = None
    by_reason: Mapping[str, int] = field(default_factory=dict)
    by_source: Mapping[str, int] = field(default_factory=dict)
    undecodable: int = 0  # records on the topic that are not DeadLetter records


@dataclass(frozen=True, kw_only=True)
class Status:
    groups: tuple[GroupStatus, ...]
    dead_letters: DeadLetters | None
    interval_s: float | None  # None: one sample, no throughput


# ---------------------------------------------------------------- pure core
def group_topics(
    group: str, view: GroupView, committed: Mapping[TopicPartition, int], *, prefix: str
) -> set[str]:
    """Topics a group's lag is reported for: those it committed or is assigned, and for the
    workers group the registry's source topics, so a group that never ran shows its backlog."""
    topics = {t for t, _ in committed} | {t for m in view.members for t, _ in m.partitions}
    if group == f"{prefix}{WORKERS_GROUP}":
        topics |= {f"{prefix}{name}" for name in worker_source_topics()}
    return topics


def worker_source_topics() -> tuple[str, ...]:
    """Registry topics the workers read but do not write: the pipeline's inputs."""
    return tuple(
        spec.name
        for spec in declared_topics()
        if Principal.WORKERS in spec.readers and Principal.WORKERS not in spec.writers
    )


def partition_lags(
    view: GroupView,
    topics: Iterable[str],
    watermarks: Mapping[TopicPartition, tuple[int, int]],
    committed: Mapping[TopicPartition, int],
) -> tuple[PartitionLag, ...]:
    """Lag of every partition of ``topics``: end offset minus committed offset (the whole
    retained backlog when nothing is committed)."""
    owners = {tp: m.client_id for m in view.members for tp in m.partitions}
    wanted = set(topics)
    rows = []
    for tp in sorted(tp for tp in watermarks if tp[0] in wanted):
        low, end = watermarks[tp]
        done = committed.get(tp)
        lag = end - max(done, low) if done is not None else end - low
        rows.append(
            PartitionLag(
                topic=tp[0], partition=tp[1], end=end, committed=done, lag=max(lag, 0), owner=owners.get(tp)
            )
        )
    return tuple(rows)


def topic_rates(first: Sample, second: Sample, group: str, topics: Iterable[str]) -> tuple[TopicRate, ...]:
    """Produced and committed records per second of each existing topic between two samples."""
    seconds = second.taken_at - first.taken_at
    if seconds <= 0:
        raise ValueError("the second sample must be taken after the first")
    before, after = first.committed.get(group, {}), second.committed.get(group, {})
    rates = []
    for topic in sorted(set(topics)):
        tps = [tp for tp in second.watermarks if tp[0] == topic and tp in first.watermarks]
        if not tps:
            continue  # the topic does not exist (yet)
        produced = sum(second.watermarks[tp][1] - first.watermarks[tp][1] for tp in tps)
        both = [tp for tp in tps if tp in before and tp in after]
        consumed = sum(after[tp] - before[tp] for tp in both) / seconds if both else None
        rates.append(TopicRate(topic=topic, produced_per_s=produced / seconds, consumed_per_s=consumed))
    return tuple(rates)


def build_status(
    views: Iterable[GroupView],
    first: Sample,
    second: Sample | None = None,
    *,
    prefix: str = "",
    dead_letters: DeadLetters | None = None,
) -> Status:
    """The report of ``views`` from one sample, or with throughput from two."""
    latest = second or first
    groups = []
    for view in views:
        committed = latest.committed.get(view.group, {})
        topics = group_topics(view.group, view, committed, prefix=prefix)
        rates = topic_rates(first, second, view.group, topics) if second else ()
        partitions = partition_lags(view, topics, latest.watermarks, committed)
        groups.append(
            GroupStatus(
                group=view.group, state=view.state, members=view.members, partitions=partitions, rates=rates
            )
        )
    interval = second.taken_at - first.taken_at if second else None
    return Status(groups=tuple(groups), dead_letters=dead_letters, interval_s=interval)


def dead_letter_figures(
    topic: str,
    first: Sample,
    second: Sample | None = None,
    records: Iterable[Mapping[str, Any]] | None = None,
    *,
    undecodable: int = 0,
) -> DeadLetters:
    """Size and rate of the dead-letter topic; counts by reason and source topic when ``records``
    (decoded DeadLetter records) are given."""
    latest = second or first
    retained = sum(high - low for tp, (low, high) in latest.watermarks.items() if tp[0] == topic)
    per_s = None
    if second is not None:
        ends = [
            (first.watermarks.get(tp, (0, high))[1], high)
            for tp, (_, high) in second.watermarks.items()
            if tp[0] == topic
        ]
        per_s = sum(high - before for before, high in ends) / (second.taken_at - first.taken_at)
    if records is None:
        return DeadLetters(topic=topic, retained=retained, per_s=per_s)
    letters = list(records)
    return DeadLetters(
        topic=topic,
        retained=retained,
        per_s=per_s,
        read=len(letters) + undecodable,
        by_reason=dict(Counter(d["error_class"] for d in letters).most_common()),
        by_source=dict(Counter(d["source_topic"] for d in letters).most_common()),
        undecodable=undecodable,
    )


def to_json(status: Status) -> dict[str, Any]:
    """A JSON-ready view of ``status``."""
    groups = []
    for g in status.groups:
        groups.append(
            {
                "group": g.group,
                "state": g.state,
                "total_lag": g.total_lag,
                "lag_by_topic": g.lag_by_topic(),
                "members": [
                    {
                        "member_id": m.member_id,
                        "client_id": m.client_id,
                        "host": m.host,
                        "partitions": [{"topic": t, "partition": p} for t, p in m.partitions],
                    }
                    for m in g.members
                ],
                "partitions": [vars(p) for p in g.partitions],
                "throughput": [vars(r) for r in g.rates],
            }
        )
    dlq = status.dead_letters
    dead = None
    if dlq is not None:
        dead = {
            "topic": dlq.topic,
            "retained": dlq.retained,
            "per_s": dlq.per_s,
            "read": dlq.read,
            "by_reason": dict(dlq.by_reason),
            "by_source": dict(dlq.by_source),
            "undecodable": dlq.undecodable,
        }
    return {"interval_s": status.interval_s, "groups": groups, "dead_letters": dead}


def render(status: Status, *, all_partitions: bool = False) -> str:
    """The terminal report; partitions without lag are left out unless ``all_partitions``."""
    lines: list[str] = []
    if not status.groups:
        lines.append("no consumer groups found")
    for g in status.groups:
        lines.append(
            f"group {g.group}   state {g.state}   replicas {len(g.members)}   total lag {g.total_lag:,}"
        )
        lines += _indent(_render_members(g))
        lines += _indent(_render_topics(g, status.interval_s))
        lines += _indent(_render_partitions(g, all_partitions=all_partitions))
        lines.append("")
    lines += _render_dead_letters(status.dead_letters)
    return "\n".join(lines).rstrip() + "\n"


def _render_members(g: GroupStatus) -> list[str]:
    if not g.members:
        return ["no replicas in the group"]
    rows = [
        [m.client_id, m.host, str(len(m.partitions)), m.member_id] for m in sorted(g.members, key=_member)
    ]
    return _table(["replica (client id)", "host", "partitions", "member id"], rows)


def _render_topics(g: GroupStatus, interval_s: float | None) -> list[str]:
    lags = g.lag_by_topic()
    if not lags:
        return ["no committed offsets and no assigned partitions"]
    if not g.rates:
        return _table(["topic", "lag"], [[topic, f"{lag:,}"] for topic, lag in sorted(lags.items())])
    rows = [
        [r.topic, f"{lags.get(r.topic, 0):,}", f"{r.produced_per_s:,.1f}", _rate(r.consumed_per_s)]
        for r in g.rates
    ]
    header = ["topic", "lag", "produced/s", "consumed/s"]
    return [*_table(header, rows), f"(rates over {interval_s or 0:.1f} s)"]


def _render_partitions(g: GroupStatus, *, all_partitions: bool) -> list[str]:
    shown = [p for p in g.partitions if all_partitions or p.lag > 0]
    if not g.partitions:
        return []
    if not shown:
        return [f"no lag on any of {len(g.partitions)} partitions"]
    rows = [
        [
            p.topic,
            str(p.partition),
            f"{p.end:,}",
            "-" if p.committed is None else f"{p.committed:,}",
            f"{p.lag:,}",
            p.owner or "-",
        ]
        for p in shown
    ]
    lines = _table(["topic", "partition", "end", "committed", "lag", "owner"], rows)
    if len(shown) < len(g.partitions):
        lines.append(f"({len(g.partitions) - len(shown)} partitions without lag not shown: --all-partitions)")
    return lines


def _render_dead_letters(dlq: DeadLetters | None) -> list[str]:
    if dlq is None:
        return []
    rate = "" if dlq.per_s is None else f"   {dlq.per_s:,.1f}/s"
    lines = [f"dead letters {dlq.topic}   {dlq.retained:,} retained{rate}"]
    if dlq.read is not None:
        lines.append(f"  read {dlq.read:,}")
        lines.append(f"  by reason  {_counts(dlq.by_reason)}")
        lines.append(f"  by source  {_counts(dlq.by_source)}")
        if dlq.undecodable:
            lines.append(f"  {dlq.undecodable:,} records are not DeadLetter records")
    return lines


def _member(m: Member) -> tuple[str, str]:
    return (m.client_id, m.member_id)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counts.items()) or "none"


def _indent(lines: list[str]) -> list[str]:
    return [f"  {line}" for line in lines]


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    numeric = [bool(rows) and all(_is_number(r[i]) for r in rows) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        padded = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric, strict=True)]
        return "  ".join(padded).rstrip()

    return [line(headers), *(line(r) for r in rows)]


def _is_number(cell: str) -> bool:
    return cell == "-" or cell.replace(",", "").replace(".", "", 1).isdigit()
