"""Twin fidelity bench: forecast error, deterioration detection, safety recall, size, speed.

Runs a synthetic cohort (``bench/_cohort.py``) through the pure twin functions and writes
``bench/results/twin_fidelity.json``. Usage::

    .venv/bin/python bench/bench_twin_fidelity.py [--patients 200] [--days 365] [--seed 7]
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

from bench._cohort import SyntheticPatient, generate_cohort  # noqa: E402
from workers.twin import serialize  # noqa: E402
from workers.twin.outputs import TwinOutputs  # noqa: E402
from workers.twin.state import (  # noqa: E402
    TwinState,
    apply_assessment,
    apply_daily_features,
    apply_demographics,
    apply_genetic_profile,
    apply_medication,
    new_twin,
)

WARMUP_DAYS = 14
APPLY = {
    "features": apply_daily_features,
    "assessment": apply_assessment,
    "medication": apply_medication,
    "genetic": apply_genetic_profile,
    "demographics": apply_demographics,
}


def _replay(p: SyntheticPatient, *, roundtrip: bool = False) -> TwinState:
    state = new_twin(p.patient_id)
    for kind, rec in p.events:
        state, _ = APPLY[kind](state, rec)
        if roundtrip:
            state = serialize.deserialize(serialize.serialize(state))
    return state


def _mae(pairs: list[tuple[float, float]]) -> float | None:
    return statistics.fmean(abs(a - b) for a, b in pairs) if pairs else None


def run(n: int, days: int, seed: int) -> dict[str, Any]:
    cohort = generate_cohort(n, seed, days)
    fc: list[tuple[float, float]] = []
    fc_truth: list[tuple[float, float]] = []
    pers: list[tuple[float, float]] = []
    pers_truth: list[tuple[float, float]] = []
    phq_model: list[tuple[float, float]] = []
    phq_pers: list[tuple[float, float]] = []
    delays: list[int] = []
    episodes = missed = false_alarms = anomaly_false = 0
    anomaly_hits = anomaly_injected = 0
    item9_total = item9_alerted = gene_drug = 0
    sizes: list[int] = []
    pickles: list[int] = []
    applied, elapsed = 0, 0.0
    for p in cohort:
        state = new_twin(p.patient_id)
        last_sev: float | None = None
        last_phq: float | None = None
        raised: list[tuple[str, int]] = []
        for kind, rec in p.events:
            t = (rec["event_time"] // 86_400_000) - (p.events[0][1]["event_time"] // 86_400_000)
            scoreable = state.forecast_phq9 is not None and last_phq is not None
            phq9 = kind == "assessment" and rec["instrument"] == "PHQ9"
            if phq9 and t >= WARMUP_DAYS and scoreable:
                phq_model.append((state.forecast_phq9, rec["total"]))
                phq_pers.append((last_phq, rec["total"]))
            start = time.perf_counter()
            state, out = APPLY[kind](state, rec)
            elapsed += time.perf_counter() - start
            applied += 1
            assert isinstance(out, TwinOutputs)
            for alert in out.alerts:
                raised.append((alert["alert_type"], t))
                gene_drug += alert["alert_type"] == "GENE_DRUG_INTERACTION"
            if kind == "assessment" and rec["instrument"] == "PHQ9":
                last_phq = rec["total"]
                if rec["submission_id"] in p.item9_submissions:
                    item9_total += 1
                    item9_alerted += any(
                        a["alert_type"] == "ITEM9_SAFETY" and a["trigger_event_id"] == rec["event_id"]
                        for a in out.alerts
                    )
            if kind == "features":
                sev = p.severity[t]
                last_sev = sev if sev is not None else last_sev
                forecast = out.update["forecast_severity"] if out.update else None
                nxt = t + 1
                if t >= WARMUP_DAYS and nxt < days and forecast is not None and last_sev:
                    truth = p.mood[nxt]
                    fc_truth.append((forecast, truth))
                    pers_truth.append((last_sev, truth))
                    if p.severity[nxt] is not None:
                        fc.append((forecast, p.severity[nxt]))  # type: ignore[arg-type]
                        pers.append((last_sev, p.severity[nxt]))  # type: ignore[arg-type]
        det = sorted(d for a, d in raised if a == "SUSTAINED_DETERIORATION")
        for ep in p.episodes:
            episodes += 1
            hit = [d for d in det if ep.onset <= d <= ep.end]
            if hit:
                delays.append(hit[0] - ep.onset)
            else:
                missed += 1
        false_alarms += sum(1 for d in det if not any(ep.onset <= d <= ep.end + 21 for ep in p.episodes))
        anom = [d for a, d in raised if a == "BIOMETRIC_ANOMALY"]
        for day in p.anomaly_days:
            anomaly_injected += 1
            anomaly_hits += day in anom
        anomaly_false += sum(1 for d in anom if d not in p.anomaly_days)
        size = serialize.state_size(state)
        sizes.append(size["serialized"])
        pickles.append(size["pickle"])

    years = n * days / 365.0
    probe = cohort[0]
    start = time.perf_counter()
    rt = _replay(probe, roundtrip=True)
    rt_rate = len(probe.events) / (time.perf_counter() - start)
    a_mae, p_mae = _mae(fc), _mae(pers)
    at_mae, pt_mae = _mae(fc_truth), _mae(pers_truth)
    return {
        "config": {"patients": n, "days": days, "seed": seed, "warmup_days": WARMUP_DAYS},
        "forecast_severity": {
            "pairs": len(fc),
            "twin_mae": a_mae,
            "persistence_mae": p_mae,
            "improvement_vs_persistence": 1 - a_mae / p_mae if a_mae and p_mae else None,
            "twin_mae_vs_hidden_mood": at_mae,
            "persistence_mae_vs_hidden_mood": pt_mae,
            "improvement_vs_persistence_hidden_mood": 1 - at_mae / pt_mae if at_mae and pt_mae else None,
            "goal": ">= 0.15 lower MAE than persistence",
        },
        "forecast_phq9": {
            "pairs": len(phq_model),
            "twin_mae": _mae(phq_model),
            "persistence_mae": _mae(phq_pers),
        },
        "deterioration": {
            "episodes": episodes,
            "detected": episodes - missed,
            "missed": missed,
            "median_delay_days": statistics.median(delays) if delays else None,
            "false_alarms_per_patient_year": false_alarms / years,
        },
        "item9": {
            "positives": item9_total,
            "alerted": item9_alerted,
            "recall": item9_alerted / item9_total if item9_total else None,
        },
        "biometric_anomaly": {
            "injected": anomaly_injected,
            "alerted_same_day": anomaly_hits,
            "false_alerts_per_patient_year": anomaly_false / years,
        },
        "gene_drug_alerts": gene_drug,
        "state_bytes": {
            "serialized_mean": statistics.fmean(sizes),
            "serialized_max": max(sizes),
            "pickle_uncompressed_max": max(pickles),
            "budget": serialize.BUDGET_BYTES,
        },
        "throughput": {
            "apply_calls": applied,
            "updates_per_s": applied / elapsed,
            "updates_per_s_with_serialize_roundtrip": rt_rate,
        },
        "determinism": {
            "replay_identical": serialize.state_digest(_replay(probe))
            == serialize.state_digest(_replay(probe)),
            "roundtrip_replay_identical": serialize.state_digest(rt)
            == serialize.state_digest(_replay(probe)),
        },
    }


def main() -> None:
    """Run the bench and write ``bench/results/twin_fidelity.json``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    result = run(args.patients, args.days, args.seed)
    out = ROOT / "bench" / "results" / "twin_fidelity.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
