"""The local state store of one changelog partition: RocksDB on disk, the changelog offset it reflects.

As in Kafka Streams and Quix Streams, the changelog topic is the source of truth and the store
a cache of it that survives restarts: a replica that starts again reads only the changelog
records after the store's checkpoint. The store is written only after the Kafka transaction
that carried the same records has committed, in one atomic RocksDB write batch together with
the new checkpoint, so it never holds state that Kafka does not. (A crash between the commit
and that write leaves the store behind its changelog; the next restore reads the difference.)

The store writes no write-ahead log: the changelog already is one. A crash loses the writes
still in memory, data and checkpoint alike (RocksDB recovers to a point in the sequence of
write batches), and the restore reads them from the changelog again. Compaction is universal:
a live trickle rewrites the same few keys of each patient, which levelled compaction would
copy down level after level.

A checkpoint older than the changelog's ``delete.retention.ms`` is not trusted: compaction may
have removed a tombstone the store never saw, so the store is wiped and restored in full.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from rocksdict import (
    BlockBasedOptions,
    Cache,
    DBCompactionStyle,
    Options,
    Rdict,
    WriteBatch,
    WriteBufferManager,
    WriteOptions,
)

CHECKPOINT_KEY = b"\x00checkpoint"  # sorts before every patient key
TOMBSTONE_RETENTION_MS = 86_400_000  # the changelog's delete.retention.ms (Kafka's default)


class PartitionStore:
    """Bytes keys to bytes values of one partition, with its changelog checkpoint.

    ``cache`` (the block cache) and ``memtables`` are shared by a replica's stores, so RocksDB's
    memory is one budget however many partitions the replica owns.
    """

    def __init__(self, path: Path, *, cache: Cache, memtables: WriteBufferManager | None = None) -> None:
        self.path = path
        self.cache = cache
        self.memtables = memtables
        path.mkdir(parents=True, exist_ok=True)
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        table = BlockBasedOptions()
        table.set_block_cache(cache)
        options.set_block_based_table_factory(table)
        options.set_write_buffer_size(4 << 20)
        options.set_compaction_style(DBCompactionStyle.universal())
        if memtables is not None:  # every store's memtables share one budget, charged to the cache
            options.set_write_buffer_manager(memtables)
        self._db = Rdict(str(path), options)
        self._options = options
        self._write = WriteOptions()
        self._write.disable_wal = True  # type: ignore[method-assign,assignment]  # a property (stub: a method)

    def checkpoint(self, now_ms: int | None = None) -> int | None:
        """The next changelog offset to read, or None when the store must be restored in full."""
        raw = self._db.get(CHECKPOINT_KEY)
        if raw is None:
            return None
        data = json.loads(raw)
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        if now_ms - data["written_ms"] > TOMBSTONE_RETENTION_MS:
            return None
        return int(data["offset"])

    def get(self, key: bytes) -> bytes | None:
        value = self._db.get(key)
        return None if value is None else bytes(value)

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Keys starting with ``prefix``, in key order."""
        it = self._db.iter()
        it.seek(prefix)
        while it.valid():
            key = it.key()
            if not key.startswith(prefix):
                break
            yield key, it.value()
            it.next()

    def write(self, puts: dict[bytes, bytes | None], checkpoint: int | None) -> None:
        """Apply ``puts`` (None deletes) and move the checkpoint, atomically."""
        batch = WriteBatch(raw_mode=True)
        for key, value in puts.items():
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        if checkpoint is not None:
            stamp = {"offset": checkpoint, "written_ms": int(time.time() * 1000)}
            batch.put(CHECKPOINT_KEY, json.dumps(stamp).encode())
        self._db.write(batch, self._write)

    def size_on_disk(self) -> int:
        return sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())

    def close(self) -> None:
        self._db.flush()  # without a write-ahead log, what is only in memory would be lost
        self._db.close()

    def wipe(self) -> PartitionStore:
        """Close, delete and open empty again."""
        self.close()
        Rdict.destroy(str(self.path), self._options)
        shutil.rmtree(self.path, ignore_errors=True)
        return PartitionStore(self.path, cache=self.cache, memtables=self.memtables)
