"""Window state of owned partitions: parts written after a commit reload exactly, the cache is
bounded, version-2 changelog records migrate, and a wiped or stale store restores in full."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from prometheus_client import REGISTRY
from rocksdict import Cache

from novamind.platform.settings import PROJECT_ROOT
from tests.workers.features.factories import DAY_MS, NOW, T0
from tests.workers.features.test_streams import hr
from workers.features.patient import PatientState
from workers.pipeline.ingest import PatientEntry
from workers.runtime.state import PatientStates
from workers.runtime.store import CHECKPOINT_KEY, TOMBSTONE_RETENTION_MS, PartitionStore

A = "p_" + "a" * 32
B = "p_" + "b" * 32


def _fold(entry: PatientEntry, day: int, offset: int) -> None:
    sample = {**hr(day, 600, 61.0), "patient_id": entry.state.patient_id}
    assert entry.state.ingest("BiometricSample", sample, NOW) is None
    entry.fence["wearable-biometrics"] = offset


def _state_writes(kind: str) -> float:
    return REGISTRY.get_sample_value("novamind_window_state_writes_total", {"kind": kind}) or 0.0


def _states(tmp_path: Path, **kw) -> PatientStates:
    states = PatientStates(tmp_path / "state", **kw)
    states.open(0)
    states.open(1)
    return states


def test_committed_parts_reload_from_the_store_after_the_cache_forgets(tmp_path: Path) -> None:
    states = _states(tmp_path)
    entry = PatientEntry(PatientState(A))
    states[A] = entry
    for day in range(3):
        _fold(entry, day, day)
    changes = states.changes({A: 1})
    assert set(changes) == {1} and all(k.startswith(A.encode() + b"|") for k in changes[1])
    states.persist(changes, {1: 17})
    states.clear()
    again = states[A]
    assert again is not entry and again.fence == {"wearable-biometrics": 2}
    assert again.state.to_dict() == entry.state.to_dict()
    assert states.partition_of[A] == 1
    assert states.stores[1].checkpoint() == 17


def test_uncommitted_changes_are_not_in_the_store(tmp_path: Path) -> None:
    states = _states(tmp_path)
    entry = PatientEntry(PatientState(A))
    states[A] = entry
    _fold(entry, 0, 0)
    states.changes({A: 0})  # the transaction then fails: nothing persisted
    states.clear()
    assert states.get(A) is None


def test_a_patient_whose_last_writes_were_journals_reloads_from_its_parts_and_journal(tmp_path: Path) -> None:
    states = _states(tmp_path)
    entry = PatientEntry(PatientState(A))
    states[A] = entry
    _fold(entry, 0, 0)
    states.persist(states.changes({A: 1}), {1: 1}, [A])
    for minute in range(601, 604):  # one sample per batch, as a live trickle brings them
        sample = {**hr(0, minute, 70.0), "patient_id": A}
        assert entry.state.ingest("BiometricSample", sample, NOW) is None
        entry.fence["wearable-biometrics"] = minute
        journals = _state_writes("journal")
        changes = states.changes({A: 1})
        assert list(changes[1]) == [f"{A}|j".encode()]
        assert _state_writes("journal") == journals + 1
        states.persist(changes, {1: minute}, [A])
    states.clear()
    again = states[A]
    assert again.fence == {"wearable-biometrics": 603} and again.state.journal.count == 3
    assert again.state.to_dict() == entry.state.to_dict()


def test_the_cache_keeps_the_most_recently_used_patients_only(tmp_path: Path) -> None:
    states = _states(tmp_path, cache_patients=1)
    for patient_id in (A, B):
        entry = PatientEntry(PatientState(patient_id))
        states[patient_id] = entry
        _fold(entry, 0, 0)
    states.persist(states.changes({A: 0, B: 1}), {}, [A, B])
    assert list(states) == [B]
    assert states[A].fence == {"wearable-biometrics": 0}  # loaded again from the store
    assert list(states) == [B, A]


def test_version_2_changelog_records_migrate_to_parts(tmp_path: Path) -> None:
    old = json.loads((Path(__file__).parents[1] / "features" / "fixtures" / "state_v2.json").read_text())
    patient_id = old["patient_id"]
    states = _states(tmp_path)
    states.apply_changelog(0, [(patient_id.encode(), json.dumps({"state": old, "fence": {"t": 5}}).encode())])
    states.restored(0, 1)
    entry = states[patient_id]
    assert entry.fence == {"t": 5} and entry.state.cursor == old["cursor"]
    pending = states.changes({})
    assert pending[0][patient_id.encode()] is None  # the old record is deleted ...
    assert pending[0][f"{patient_id}|h".encode()] is not None  # ... once the parts are written
    states.persist(pending, {0: 3})
    assert states.changes({}) == {}


def test_a_store_without_a_fresh_checkpoint_is_restored_in_full(tmp_path: Path) -> None:
    states = _states(tmp_path)
    assert states.start_offset(0) is None  # never restored
    states.restored(0, 42)
    assert states.start_offset(0) == 42
    store = states.stores[0]
    stale = {"offset": 42, "written_ms": 0}
    store.write({CHECKPOINT_KEY: json.dumps(stale).encode(), b"x|h": b"{}"}, None)
    assert store.checkpoint(now_ms=TOMBSTONE_RETENTION_MS + 1) is None
    assert states.start_offset(0) is None  # wiped: compaction may have dropped tombstones
    assert states.stores[0].get(b"x|h") is None


def test_a_store_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "p0"
    store = PartitionStore(path, cache=Cache(1 << 20))
    store.write({b"k": b"v"}, 7)
    store.close()
    again = PartitionStore(path, cache=Cache(1 << 20))
    assert again.get(b"k") == b"v" and again.checkpoint() == 7
    assert list(again.scan(b"k")) == [(b"k", b"v")]
    again.close()


def test_what_the_next_batch_folded_stays_in_memory_while_the_previous_commit_settles(tmp_path: Path) -> None:
    states = _states(tmp_path, cache_patients=1)
    entry = PatientEntry(PatientState(A))
    states[A] = entry
    _fold(entry, 20, 0)
    first = states.changes({A: 0})  # batch N: its transaction commits while N+1 is folded
    states[A] = entry
    _fold(entry, 3, 1)  # N+1 opens a day far behind the watermark (a backfill)
    states[B] = PatientEntry(PatientState(B))  # and the cache is over its bound
    states.persist(first, {0: 1}, [A])
    assert A in list(states) and T0 // DAY_MS + 3 in entry.state.days
    second = states.changes({A: 0})
    assert any(b"|d|" in key for key in second[0])
    states.persist(second, {0: 2}, [A])
    states.clear()
    assert states[A].state.to_dict() == entry.state.to_dict()


def test_a_store_killed_before_its_writes_reached_disk_comes_back_consistent(tmp_path: Path) -> None:
    """No write-ahead log: a killed process loses its unflushed writes, checkpoint included, so
    the store is older but consistent and the restore reads the rest from the changelog."""
    path = tmp_path / "p0"
    store = PartitionStore(path, cache=Cache(1 << 20))
    store.write({b"a": b"1"}, 10)
    store.close()
    killed = (
        "import os, sys; from pathlib import Path; from rocksdict import Cache;"
        "from workers.runtime.store import PartitionStore;"
        "s = PartitionStore(Path(sys.argv[1]), cache=Cache(1 << 20)); s.write({b'b': b'2'}, 20); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", killed, str(path)], check=True, cwd=PROJECT_ROOT)
    again = PartitionStore(path, cache=Cache(1 << 20))
    assert (again.checkpoint(), again.get(b"a"), again.get(b"b")) == (10, b"1", None)
    again.close()
