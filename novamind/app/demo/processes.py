"""The demo's subprocesses: worker replicas and the intake, each logging JSON lines to a file.

They run in their own process group, so a Ctrl-C in the terminal reaches the demo alone,
which then stops them in order (intake, then workers: SIGTERM, SIGKILL after a minute).
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from novamind.app.demo.exceptions import DemoError
from novamind.platform.settings import PROJECT_ROOT

STOP_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    """One ``novamind`` subcommand in a subprocess with an HTTP port."""

    def __init__(self, name: str, argv: Sequence[str], *, port: int, env: dict[str, str], logs: Path) -> None:
        self.name = name
        self.port = port
        self.log_path = logs / f"{name}.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "novamind.app.cli", *argv],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            process_group=0,
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def get(self, path: str) -> tuple[int, dict[str, Any]] | None:
        """Status and JSON body of ``GET path``; None while the port does not answer."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as answer:
                return int(answer.status), json.loads(answer.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
            return None

    def terminate(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after a minute; the exit code."""
        if self.alive():
            self.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT_S)
        self._log.close()
        return self.process.returncode


def stop_all(services: Sequence[Service]) -> None:
    """SIGTERM to every service at once, then wait for each (SIGKILL after a minute)."""
    for service in services:
        service.terminate()
    for service in services:
        service.stop()


def start_workers(count: int, *, env: dict[str, str], logs: Path) -> list[Service]:
    workers = []
    for index in range(count):
        port = free_port()
        argv = ["worker", "--web-port", str(port), "--replica-id", f"demo-{index}"]
        workers.append(Service(f"worker-{index}", argv, port=port, env=env, logs=logs))
    return workers


def start_intake(*, env: dict[str, str], logs: Path) -> Service:
    port = free_port()
    return Service("intake", ["intake", "serve", "--port", str(port)], port=port, env=env, logs=logs)


def check_alive(services: Sequence[Service]) -> None:
    for service in services:
        if not service.alive():
            raise DemoError(
                f"{service.name} exited with code {service.process.returncode}; see {service.log_path}"
            )


def wait_until(
    ready: Callable[[], bool], *, services: Sequence[Service], what: str, timeout_s: float = 120.0
) -> None:
    """Poll ``ready`` until it holds; a dead service or the timeout is a :class:`DemoError`."""
    deadline = time.monotonic() + timeout_s
    while True:
        check_alive(services)
        if ready():
            return
        if time.monotonic() > deadline:
            logs = ", ".join(str(s.log_path) for s in services)
            raise DemoError(f"{what} not within {timeout_s:.0f}s; see {logs}")
        time.sleep(0.3)


def intake_ready(intake: Service) -> bool:
    answer = intake.get("/healthz")
    return answer is not None and answer[0] == 200


def assigned_partitions(workers: Sequence[Service]) -> list[int] | None:
    """Partitions each replica owns once every one is ready, else None."""
    owned = []
    for worker in workers:
        answer = worker.get("/readyz")
        if answer is None or answer[0] != 200:
            return None
        owned.append(int(answer[1].get("assigned_partitions", 0)))
    return owned
