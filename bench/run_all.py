"""``make bench``: run every benchmark, then write bench/results/summary.{json,md}.

``python -m bench.run_all --summarize`` rebuilds the summary from the result files as they are
(after running one benchmark alone), running nothing."""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

from bench.headline import headline_rows

ONE_SAMPLE_PER_BATCH = ("--patients", "5000", "--rate", "250", "--seconds", "60", "--tag", "5000_250")
"""``bench_live`` in the regime of a fleet sending one sample a minute per patient: a 5 s batch
holds at most one sample of a patient (three a minute each here, so the CPU above idle is
measurable)."""
BENCHES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    # (result file stem, module, arguments)
    ("codec", "bench_codec", ()),
    ("connectors", "bench_connectors", ()),
    ("features", "bench_features", ()),
    ("fhir", "bench_fhir", ()),
    ("latency", "bench_latency", ()),
    ("live", "bench_live", ()),
    ("load", "bench_load", ()),
    ("live_5000_250", "bench_live", ONE_SAMPLE_PER_BATCH),
    ("twin_fidelity", "bench_twin_fidelity", ()),
    ("worker", "bench_worker", ()),
)
RESULTS = Path(__file__).parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--summarize", action="store_true", help="rebuild the summary from the result files, running nothing"
    )
    timings: dict[str, float] = {}
    if not parser.parse_args(argv).summarize:
        for stem, module, args in BENCHES:
            print(f"==> {module} {' '.join(args)}", flush=True)
            started = time.monotonic()
            subprocess.run([sys.executable, "-m", f"bench.{module}", *args], check=True)
            timings[stem] = round(time.monotonic() - started, 1)
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
    lines += ["| result | file | seconds (this run) |", "|---|---|---|"]
    lines += [f"| {p.stem} | bench/results/{p.name} | {timings.get(p.stem, 'not rerun')} |" for p in files]
    (RESULTS / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
