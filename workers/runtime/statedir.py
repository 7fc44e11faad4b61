"""Where a replica keeps its local state stores.

A replica with a stable name (``NOVAMIND_WORKER__REPLICA_ID``, e.g. a StatefulSet pod) keeps
its stores across restarts, so a restart reads only the changelog tail. Without one, the
name changes with every process and a store could never be found again: it lives in a
temporary folder removed on a clean stop.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from novamind.platform.settings import Settings
from workers.runtime import clients


@dataclass(frozen=True)
class StateDir:
    path: Path
    temporary: bool

    def cleanup(self) -> None:
        if self.temporary:
            shutil.rmtree(self.path, ignore_errors=True)


def state_dir(settings: Settings) -> StateDir:
    worker = settings.worker
    group = clients.group_id(settings)
    if worker.state_dir is not None:
        return StateDir(worker.state_dir / group / clients.replica_id(settings), temporary=False)
    if worker.replica_id is not None:
        return StateDir(settings.local.home / "state" / group / worker.replica_id, temporary=False)
    return StateDir(Path(tempfile.mkdtemp(prefix="novamind-state-")), temporary=True)
