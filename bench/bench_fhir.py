"""Benchmark FHIR mapping on a generated ~1 MB Synthea-like patient bundle.

Run: ``.venv/bin/python bench/bench_fhir.py``; writes ``bench/results/fhir.json``.
"""

from __future__ import annotations

import json
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

from fhir.resources.R4B import get_fhir_model_class

from connectors.ehr import FhirMapper
from connectors.simulator.synthea import synthea_like_bundle

KEY = b"bench-pseudonym-key-32-bytes-xx!"
RUNS = 5


def main() -> None:
    bundle = synthea_like_bundle(seed=1, target_bytes=1_000_000)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bundle.json"
        path.write_text(json.dumps(bundle))
        size = path.stat().st_size
        timings, summary, records = [], {}, 0
        for _ in range(RUNS):
            mapper = FhirMapper(
                key=KEY,
                as_of=date(2025, 1, 1),
                emit_biometrics=True,
                received_time=datetime(2025, 1, 1, tzinfo=UTC),
            )
            started = time.perf_counter()
            records = sum(1 for _ in mapper.map_path(path))
            timings.append(time.perf_counter() - started)
            summary = mapper.summary.as_dict()
    started = time.perf_counter()  # baseline: build a model for every resource
    for entry in bundle["entry"]:
        resource = entry["resource"]
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    full_parse = time.perf_counter() - started
    best = min(timings)
    resources = summary["read"]
    result = {
        "bundle_bytes": size,
        "resources": resources,
        "records": records,
        "mapped": summary["mapped"],
        "skipped": summary["skipped"],
        "rejected": len(summary["rejected"]),
        "runs": RUNS,
        "best_seconds": round(best, 4),
        "median_seconds": round(sorted(timings)[RUNS // 2], 4),
        "resources_per_s": round(resources / best),
        "mb_per_s": round(size / best / 1e6, 2),
        "baseline_model_every_resource_seconds": round(full_parse, 4),
    }
    out = Path(__file__).parent / "results" / "fhir.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
