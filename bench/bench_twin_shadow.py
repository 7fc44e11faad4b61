"""Shadow bench: a candidate model version beside the live one on the fidelity cohorts.

Replays the two cohorts of ``bench_twin_fidelity`` (200 patients x 365 days each by default)
through the twin stage's pure functions (``workers.pipeline.twin.replay_entries``) twice: the
live version alone, then with the candidate in shadow. Reports, per cohort:

* state bytes per patient: the live twin alone, and live + shadow as the ``twins`` document
  holds them (the budget is 32 KB per patient, shadow included);
* apply throughput with and without the shadow (the shadow's cost);
* that the shadow left the live twins byte-identical;
* the promotion rule (``workers.twin.promotion``) applied to the shadow's paired metrics.

Writes ``bench/results/twin_shadow.json`` (or ``--out``). Usage::

    .venv/bin/python -m bench.bench_twin_shadow [--patients 200] [--days 365] [--shadow fast-weights]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import time
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_twin_fidelity import GENERATORS  # noqa: E402
from workers.pipeline.twin import replay_entries  # noqa: E402
from workers.twin import serialize  # noqa: E402
from workers.twin.promotion import evaluate  # noqa: E402
from workers.twin.versions import VersionPlan, registry  # noqa: E402

RECORD = {
    "features": "PatientDailyFeatures",
    "assessment": "AssessmentResult",
    "medication": "MedicationEvent",
    "genetic": "GeneticProfile",
    "demographics": "Demographics",
}


def run(n: int, days: int, seed: int, generator: str, *, live: str, shadow: str) -> dict[str, Any]:
    versions = registry()
    plan = VersionPlan(live=versions.get(live), shadow=versions.get(shadow))
    cohort = GENERATORS[generator](n, seed, days)
    records = [(RECORD[kind], rec) for p in cohort for kind, rec in p.events]

    start = time.perf_counter()
    alone = replay_entries(records, plan=VersionPlan(live=plan.live), versions=versions)
    alone_s = time.perf_counter() - start
    start = time.perf_counter()
    shadowed = replay_entries(records, plan=plan, versions=versions)
    shadowed_s = time.perf_counter() - start

    live_bytes = [len(serialize.serialize(e.state)) for e in shadowed.values()]
    total_bytes = [
        b + len(serialize.serialize(e.shadow.state)) if e.shadow else b
        for b, e in zip(live_bytes, shadowed.values(), strict=True)
    ]
    identical = all(
        serialize.serialize(alone[p].state) == serialize.serialize(e.state) for p, e in shadowed.items()
    )
    report = evaluate(
        [e.shadow.paired for e in shadowed.values() if e.shadow],
        live=plan.live.id,
        shadow=plan.shadow.id if plan.shadow else "",
    )
    return {
        "config": {
            "generator": generator,
            "patients": n,
            "days": days,
            "live": plan.live.id,
            "shadow": report.shadow,
        },
        "state_bytes": {
            "live_mean": statistics.fmean(live_bytes),
            "live_max": max(live_bytes),
            "live_and_shadow_mean": statistics.fmean(total_bytes),
            "live_and_shadow_max": max(total_bytes),
            "budget": serialize.BUDGET_BYTES,
        },
        "throughput": {
            "inputs": len(records),
            "inputs_per_s_live_only": len(records) / alone_s,
            "inputs_per_s_with_shadow": len(records) / shadowed_s,
        },
        "live_twins_identical_with_and_without_shadow": identical,
        "promotion": report.to_dict(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--live", default="standard")
    parser.add_argument("--shadow", default="fast-weights")
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "bench" / "results" / "twin_shadow.json")
    args = parser.parse_args()
    result = {
        name: run(args.patients, args.days, args.seed, name, live=args.live, shadow=args.shadow)
        for name in GENERATORS
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
