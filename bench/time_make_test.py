"""How long a fresh clone takes to pass CI: ``git clone`` of HEAD, then ``bash .ci/run``.

Runs in a temporary folder with its own local services on free ports (so it does not touch
the services of this checkout), with the package caches of this machine (pip, Maven, Go).
Writes bench/results/make_test.json. Slow (it is the whole test suite): ``make bench-ci``.
"""

from __future__ import annotations

import json
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from novamind.platform.settings import PROJECT_ROOT

RESULTS = Path(__file__).parent / "results"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pytest_outcome(log: str) -> str | None:
    """pytest's final summary line (e.g. "783 passed, 5 skipped in 584.41s"), if any."""
    found = re.findall(r"^=*\s*(\d+ (?:passed|failed).*? in [\d.]+s.*?)\s*=*$", log, flags=re.MULTILINE)
    return found[-1] if found else None


def main() -> int:
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="novamind-ci-") as tmp:
        clone = Path(tmp) / "novamind"
        subprocess.run(["git", "clone", "--quiet", str(PROJECT_ROOT), str(clone)], check=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("NOVAMIND_")}
        env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
        env.pop("MONGODB_URI", None)
        env.pop("SCHEMA_REGISTRY_URL", None)
        env.update(
            CI="true",
            NOVAMIND_LOCAL__KAFKA_PORT=str(free_port()),
            NOVAMIND_LOCAL__KAFKA_CONTROLLER_PORT=str(free_port()),
            NOVAMIND_LOCAL__MONGO_PORT=str(free_port()),
            NOVAMIND_LOCAL__REGISTRY_PORT=str(free_port()),
        )
        log = RESULTS / "make_test.log"
        started = time.monotonic()
        with log.open("w") as out:
            code = subprocess.run(
                ["bash", ".ci/run"], cwd=clone, env=env, stdout=out, stderr=subprocess.STDOUT
            ).returncode
        seconds = time.monotonic() - started
        subprocess.run(
            [str(clone / ".venv/bin/novamind"), "services", "down"], cwd=clone, env=env, check=False
        )
    outcome = pytest_outcome(log.read_text(errors="replace"))
    result = {
        "bench": "make_test",
        "commit": commit,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "command": "git clone + bash .ci/run (make test: install, services, lint, every test)",
        "exit_code": code,
        "seconds": round(seconds, 1),
        "pytest": outcome,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "make_test.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result))
    return code


if __name__ == "__main__":
    sys.exit(main())
