"""The shared send loop: routing, encoding failures, acknowledgement accounting, stop, progress."""

from __future__ import annotations

import io
import os
import signal
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.delivery import (
    EHR_ROUTES,
    SOURCE_ROUTES,
    WEARABLE_ROUTES,
    Delivery,
    ImportSummary,
    Progress,
    Rejected,
    StopFlag,
    deliver,
)
from connectors.records import biometric_sample
from schemas.codec import AvroCodec
from schemas.exceptions import WrongTopic

P1, P2 = "p_" + "1" * 32, "p_" + "2" * 32
CODEC = AvroCodec()


class KafkaError:
    def __init__(self, name: str) -> None:
        self._name = name

    def name(self) -> str:
        return self._name


class RecordingProducer:
    """Stands in for EventProducer in unit tests: keeps what was sent, acknowledges on flush.

    ``refuse`` names topics whose records Kafka refuses; ``lose`` leaves that many unanswered.
    """

    def __init__(self, *, refuse: frozenset[str] = frozenset(), lose: int = 0) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.pending: list[tuple[str, Any]] = []
        self.refuse, self.lose = refuse, lose
        self.flushes = 0

    def send(self, topic, *, key, value, on_delivery=None):
        self.sent.append((topic, key, value))
        self.pending.append((topic, on_delivery))

    def flush(self, timeout: float = 60.0) -> int:
        self.flushes += 1
        answered = self.pending[: len(self.pending) - self.lose]
        for topic, report in answered:
            report(KafkaError("_MSG_TIMED_OUT") if topic in self.refuse else None, None)
        self.pending = self.pending[len(answered) :]
        return len(self.pending)


def sample(pid: str, minute: int, value: float = 60.0) -> dict:
    return biometric_sample(
        patient_id=pid,
        source="fitbit",
        device_id="d_" + "3" * 32,
        metric="HEART_RATE",
        value=value,
        event_time=datetime(2024, 5, 1, 8, minute, tzinfo=UTC),
        received_time=datetime(2024, 5, 1, 9, tzinfo=UTC),
    )


def test_records_are_keyed_by_pseudonym_encoded_and_routed():
    producer = RecordingProducer()
    delivery = Delivery(producer=producer, codec=CODEC, topic_name=lambda t: f"x.{t}", routes=WEARABLE_ROUTES)
    summary = deliver(
        [(P1, "BiometricSample", sample(P1, 0)), (P2, "BiometricSample", sample(P2, 1))], delivery
    )
    assert [(t, k) for t, k, _ in producer.sent] == [
        ("x.wearable-biometrics", P1.encode()),
        ("x.wearable-biometrics", P2.encode()),
    ]
    name, decoded = CODEC.decode_dict(producer.sent[0][2])
    assert name == "BiometricSample" and decoded["patient_id"] == P1 and decoded["value"] == 60.0
    assert summary.as_dict() | {"seconds": 0} == {
        "read": 0,
        "records": 2,
        "produced": {"wearable-biometrics": 2},
        "skipped": {},
        "rejected": 0,
        "rejections": [],
        "unacknowledged": 0,
        "failed": {},
        "patients": 2,
        "interrupted": None,
        "seconds": 0,
    }
    assert summary.complete


def test_ehr_assessments_stay_on_the_ehr_topic():
    assert EHR_ROUTES["AssessmentResult"] == "ehr-clinical-events"
    assert SOURCE_ROUTES["AssessmentResult"] == "patient-reports"
    assert set(WEARABLE_ROUTES) == {"BiometricSample"}


def test_a_route_the_registry_does_not_declare_is_refused_at_construction():
    with pytest.raises(WrongTopic, match="wearable-biometrics carries BiometricSample, not SymptomReport"):
        Delivery(producer=RecordingProducer(), codec=CODEC, routes={"SymptomReport": "wearable-biometrics"})


def test_unroutable_and_unencodable_records_are_rejected_not_sent():
    producer = RecordingProducer()
    seen: list[Rejected] = []
    summary = ImportSummary(on_reject=seen.append)
    delivery = Delivery(producer=producer, codec=CODEC, routes=WEARABLE_ROUTES, summary=summary)
    bad = sample(P1, 2) | {"value": "fast"}
    deliver([(P1, "ClinicalEvent", {"event_id": "e1"}), (P1, "BiometricSample", bad)], delivery)
    assert producer.sent == []
    assert [r.id for r in seen] == ["e1", bad["event_id"]]
    assert "no topic carries ClinicalEvent" in seen[0].reason
    assert seen[1].path == "BiometricSample" and "value" in seen[1].reason
    assert delivery.encode_errors == {"EncodeError": 1}
    assert summary.patients == 0  # nothing of the patient left, so nothing to audit


def test_patient_hook_runs_once_before_the_first_record_and_can_stop_the_run():
    producer = RecordingProducer()
    order: list[str] = []

    def audit(pid: str) -> None:
        order.append(f"audit {pid} after {len(producer.sent)} sent")
        if pid == P2:
            raise RuntimeError("audit log down")

    delivery = Delivery(producer=producer, codec=CODEC, routes=WEARABLE_ROUTES, on_patient=audit)
    records = [(P1, "BiometricSample", sample(P1, m)) for m in range(3)] + [
        (P2, "BiometricSample", sample(P2, 0))
    ]
    with pytest.raises(RuntimeError, match="audit log down"):
        deliver(records, delivery)
    assert order == [f"audit {P1} after 0 sent", f"audit {P2} after 3 sent"]
    assert len(producer.sent) == 3 and producer.flushes == 1  # flushed even when failing
    assert delivery.summary.acknowledged == {"wearable-biometrics": 3}


def test_refused_and_unanswered_records_are_unacknowledged():
    producer = RecordingProducer(refuse=frozenset({"ehr-clinical-events"}), lose=1)
    delivery = Delivery(producer=producer, codec=CODEC)
    for m in range(3):
        delivery.send(P1, "BiometricSample", sample(P1, m))
    delivery.send_bytes("ehr-clinical-events", b"", b"garbage")
    delivery.send_bytes("wearable-biometrics", b"", b"lost")
    summary = delivery.finish()
    assert summary.sent == {"wearable-biometrics": 4, "ehr-clinical-events": 1}
    assert summary.acknowledged == {"wearable-biometrics": 3}
    assert summary.failed == {"_MSG_TIMED_OUT": 1}
    assert summary.unacknowledged == 2
    assert not summary.complete


def test_a_stop_request_ends_reading_and_still_flushes():
    producer = RecordingProducer()
    stop = StopFlag()
    pulled: list[int] = []

    def records():
        for m in range(10):
            pulled.append(m)
            if m == 3:
                stop.signal, stop.signum = "SIGTERM", signal.SIGTERM
            yield P1, "BiometricSample", sample(P1, m)

    summary = deliver(records(), Delivery(producer=producer, codec=CODEC), stop=stop)
    assert pulled == [0, 1, 2, 3]
    assert summary.interrupted == "SIGTERM" and not summary.complete
    assert summary.acknowledged == {"wearable-biometrics": 4} and summary.unacknowledged == 0


def test_stop_flag_catches_sigterm_and_restores_the_handler():
    before = signal.getsignal(signal.SIGTERM)
    with StopFlag().installed() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.signal == "SIGTERM" and stop.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before


def test_rejections_listed_are_capped_but_counted():
    summary = ImportSummary()
    for i in range(5):
        summary.reject(Rejected(f"r{i}", f"f.json#$[{i}]", "bad"))
    out = summary.as_dict(listed=2)
    assert out["rejected"] == 5
    assert out["rejections"] == [
        {"id": "r0", "path": "f.json#$[0]", "reason": "bad"},
        {"id": "r1", "path": "f.json#$[1]", "reason": "bad"},
    ]
    assert Rejected(None, "x.xml:3", "broken").line() == "rejected - at x.xml:3: broken"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_is_throttled_and_notes_do_not_tear_the_line():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream, clock, summary = Tty(), Clock(), ImportSummary(read=10)
    progress = Progress("fhir", summary, stream=stream, interval=1.0, fraction=lambda: 0.25, clock=clock)
    progress.tick()
    assert stream.getvalue() == ""  # not yet due
    clock.now += 2.0
    summary.sent["x"], summary.acknowledged["x"] = 500, 400
    summary.rejected.append(Rejected(None, "p", "r"))
    progress.tick()
    line = "fhir: 10 read (25%), 500 sent, 400 acknowledged, 1 rejected, 250 records/s"
    assert stream.getvalue() == "\r" + line
    progress.note("rejected - at p: r")
    assert stream.getvalue().endswith("\r" + " " * len(line) + "\rrejected - at p: r\n")
    progress.done()
    assert stream.getvalue().endswith("250 records/s\n")


def test_progress_off_a_terminal_prints_whole_lines():
    stream, clock, summary = io.StringIO(), Clock(), ImportSummary(read=3)
    progress = Progress("fitbit", summary, stream=stream, clock=clock)
    assert progress.interval == 10.0
    clock.now += 10.0
    progress.tick()
    assert stream.getvalue() == "fitbit: 3 read, 0 sent, 0 acknowledged, 0 records/s\n"


def test_outcomes_are_counted_for_prometheus_per_connector():
    from novamind.platform import metrics

    def count(outcome: str) -> float:
        value = metrics.REGISTRY.get_sample_value(
            "novamind_connector_records_total", {"connector": "fitbit-test", "outcome": outcome}
        )
        return value or 0.0

    before = {o: count(o) for o in ("produced", "invalid", "failed")}
    producer = RecordingProducer(refuse=frozenset({"ehr-clinical-events"}))
    delivery = Delivery(producer=producer, codec=CODEC, connector="fitbit-test")
    delivery.send(P1, "BiometricSample", sample(P1, 1))
    delivery.send(P1, "BiometricSample", sample(P1, 2) | {"value": "fast"})  # cannot be encoded
    delivery.send_bytes("ehr-clinical-events", b"", b"refused")
    delivery.finish()
    assert {o: count(o) - before[o] for o in before} == {"produced": 1.0, "invalid": 1.0, "failed": 1.0}
