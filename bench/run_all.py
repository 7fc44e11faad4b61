"""``make bench``: run every benchmark, then write bench/results/summary.{json,md}."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from pathlib import Path

from bench.headline import headline_rows

BENCHES = (
    "bench_codec",
    "bench_connectors",
    "bench_features",
    "bench_fhir",
    "bench_latency",
    "bench_live",
    "bench_twin_fidelity",
    "bench_worker",
)
RESULTS = Path(__file__).parent / "results"


def main() -> int:
    timings: dict[str, float] = {}
    for name in BENCHES:
        print(f"==> {name}", flush=True)
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", f"bench.{name}"], check=True)
        timings[name] = round(time.monotonic() - started, 1)
    files = [p for p in sorted(RESULTS.glob("*.json")) if p.stem != "summary"]
    results = {p.stem: json.loads(p.read_text()) for p in files}
    summary = {
        "machine": platform.platform(),
        "python": platform.python_version(),
        "seconds": timings,
        "results": results,
    }
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    lines = [f"Machine: {summary['machine']}, Python {summary['python']}.", "", *headline_rows(results), ""]
    lines += ["| benchmark | file | seconds |", "|---|---|---|"]
    lines += [f"| {n} | bench/results/{n.removeprefix('bench_')}.json | {s} |" for n, s in timings.items()]
    (RESULTS / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
