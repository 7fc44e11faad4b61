"""The samples a patient folded since its parts were last written: one small part per live write.

In a live trickle a patient sends a sample now and then, and rewriting the parts a sample
changes (head, day meta, hour cell) costs several times what folding it does. So, as Flink's
changelog state backend materialises state now and then and logs the changes between, a write
between two *snapshots* of a patient's parts carries only the journal: the validated samples
folded since the last snapshot, with the source offsets reached. Loading folds the journal
onto the stored parts again (:meth:`PatientState.refold`), which reproduces the state exactly,
because folding is deterministic and a sample is journaled only when it changed nothing but
the windows, the clock and the device streams: no rejection, sleep stage, late sample into a
closed day, closing of days or eviction. Anything else (and a journal of ``JOURNAL_LIMIT``
samples) makes the next write a snapshot, which deletes the journal.

Packed (little-endian): the tag ``J``, the number of fenced topics and each (offset, name), then
per sample its time, fingerprint, metric index, value, flags (outlier; no received time),
received time and device id. Names are length-prefixed UTF-8. About 45 bytes per sample.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from functools import lru_cache

from workers.validation.catalog import METRIC_INDEX, METRIC_NAMES
from workers.validation.rules import Sample

JOURNAL_LIMIT = 16  # samples between two snapshots: a journal write stays a few hundred bytes
TAG = b"J"
_ENTRY = struct.Struct("<qIBdBq")
_COUNT = struct.Struct("<B")
_OFFSET = struct.Struct("<q")
_LENGTH = struct.Struct("<H")


class Journal:
    """The samples folded since the last snapshot, packed; ``open`` while every change since
    then is one of them."""

    __slots__ = ("count", "entries", "open", "stored")

    def __init__(self) -> None:
        self.entries = bytearray()
        self.count = 0
        self.open = True
        self.stored = False  # a write (or the store loaded from) holds a journal to delete

    def add(self, sample: Sample, fp: int) -> None:
        if self.count == JOURNAL_LIMIT:  # the next write is a snapshot: a backfill packs nothing
            self.open = False
        if not self.open:
            return
        received = sample.received
        flags = sample.outlier | (received is None) << 1
        self.entries += _ENTRY.pack(
            sample.t, fp, METRIC_INDEX[sample.metric], sample.value, flags, received or 0
        )
        self.entries += name_bytes(sample.device_id)
        self.count += 1

    def stop(self) -> None:
        """Something that folding the journal again would not reproduce has changed."""
        self.open = False

    def writable(self) -> bool:
        """True when the next write may carry the journal alone."""
        return self.open and self.count > 0

    def pack(self, fence: dict[str, int]) -> bytes:
        return b"".join((TAG, _COUNT.pack(len(fence)), fence_bytes(fence), self.entries))

    def reset(self) -> None:
        """After a snapshot: empty, open and not stored."""
        self.entries = bytearray()
        self.count = 0
        self.open = True
        self.stored = False


def unpack(raw: bytes) -> tuple[dict[str, int], Iterator[tuple[Sample, int]]]:
    """Inverse of :meth:`Journal.pack`: the fence and the samples with their fingerprints."""
    (n_fence,) = _COUNT.unpack_from(raw, 1)
    fence, o = read_fence(raw, 1 + _COUNT.size, n_fence)
    return fence, _samples(raw, o)


def _samples(raw: bytes, o: int) -> Iterator[tuple[Sample, int]]:
    while o < len(raw):
        t, fp, metric, value, flags, received = _ENTRY.unpack_from(raw, o)
        device_id, o = read_name(raw, o + _ENTRY.size)
        sample = Sample(
            "", t, METRIC_NAMES[metric], value, device_id, None, None, bool(flags & 1),
            None if flags & 2 else received,
        )  # fmt: skip
        yield sample, fp


def fence_bytes(fence: dict[str, int]) -> bytes:
    """Each fenced topic's offset and name (the count is the caller's)."""
    return b"".join(_OFFSET.pack(offset) + name_bytes(topic) for topic, offset in fence.items())


def read_fence(raw: bytes, o: int, count: int) -> tuple[dict[str, int], int]:
    """Inverse of :func:`fence_bytes`: ``count`` topics from ``o``, and the offset after them."""
    fence = {}
    for _ in range(count):
        (offset,) = _OFFSET.unpack_from(raw, o)
        topic, o = read_name(raw, o + _OFFSET.size)
        fence[topic] = offset
    return fence, o


@lru_cache(maxsize=4096)  # device streams and topics recur with every write
def name_bytes(text: str) -> bytes:
    """``text`` as length-prefixed UTF-8."""
    raw = text.encode()
    return _LENGTH.pack(len(raw)) + raw


def read_name(raw: bytes, o: int) -> tuple[str, int]:
    """Inverse of :func:`name_bytes`: the name at ``o`` and the offset after it."""
    (size,) = _LENGTH.unpack_from(raw, o)
    o += _LENGTH.size
    return raw[o : o + size].decode(), o + size
