"""Twin fidelity bench: forecast error, deterioration detection, safety recall, size, speed.

Runs two independently written synthetic cohorts through the pure twin functions and reports
every figure on each: ``cohort`` (``bench/_cohort.py``: AR(1) mood with ramped episodes) and
``trajectories`` (``bench/_trajectories.py``: trajectory classes from published studies,
day-of-week effects, bursty app non-use, compressive raters, lagged antidepressant response).
Writes ``bench/results/twin_fidelity.json`` (or ``--out``), one section per generator. Usage::

    .venv/bin/python -m bench.bench_twin_fidelity [--patients 200] [--days 365] [--seed 7]
    .venv/bin/python -m bench.bench_twin_fidelity --patients 40 --out /tmp/quick.json
    .venv/bin/python -m bench.bench_twin_fidelity --generator trajectories  # one of them
    .venv/bin/python -m bench.bench_twin_fidelity --seeds 7,20,30  # also other draws

The trajectories cohort is drawn with ``--seed + 4`` (11 by default) so that no seed is
shared between the generators. On it, figures are also split by trajectory class and for
compressive raters. ``--seeds`` runs the bench once per seed: the first seed's sections are
written as usual, and ``by_seed`` holds the headline figures of every seed, so that rules
tuned on some draws can be judged on draws they were not tuned on.

Every forecast is scored beside simple baselines on the same targets (``bench/_fidelity.py``):
next-day severity against persistence and the 7-day mean of past reports, both on the
observed next-day mean report and on the hidden mood; bias is also split by worsening and
improving phases, and the 80% interval's coverage of the next-day outcome (overall and by
phase). The next PHQ-9 total is scored against persistence (last total), the
mean of the last two totals, and 2.5 x the 7-day mean of daily reports (the population
slope between the 0-10 scale and PHQ-9).
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

from bench import _cohort, _trajectories  # noqa: E402
from bench._cohort import SyntheticPatient  # noqa: E402
from bench._fidelity import (  # noqa: E402
    ORACLE,
    REFERENCES,
    BaselineDetectors,
    DetectionScore,
    EpisodeScore,
    ForecastScore,
    GridMedian,
    IllnessScore,
    RecentMean,
    from_histogram,
    median_interval,
    rate_interval,
    share_interval,
    trend_phase,
)
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


GENERATORS = {
    "cohort": lambda n, seed, days: _cohort.generate_cohort(n, seed, days),
    "trajectories": lambda n, seed, days: _trajectories.generate_cohort(n, seed + 4, days),
}


def _groups(p: SyntheticPatient) -> list[str]:
    """The reporting groups of a patient: its trajectory class and rating style, if known."""
    cls = getattr(p, "trajectory", "")
    if not cls:
        return []
    return [cls, "compressive_raters" if getattr(p, "compressive", False) else "full_scale_raters"]


def run(n: int, days: int, seed: int, generator: str = "cohort") -> dict[str, Any]:
    cohort: list[SyntheticPatient] = GENERATORS[generator](n, seed, days)
    by_group: dict[str, ForecastScore] = {}
    detected_by_group: dict[str, list[int]] = {}
    false_by_group: dict[str, list[int]] = {}  # false alarms, patients
    sev_obs = ForecastScore()
    sev_hidden = ForecastScore()
    phq = ForecastScore(baselines=("persistence", "mean_2_totals", "mean_7d_scaled"))
    delays: list[int] = []
    detection = DetectionScore()
    baseline_detection: dict[str, EpisodeScore] = {}
    illness = IllnessScore()
    episodes = missed = false_alarms = anomaly_false = 0
    anomaly_hits = anomaly_injected = 0
    item9_total = item9_alerted = gene_drug = 0
    sizes: list[int] = []
    pickles: list[int] = []
    applied, elapsed = 0, 0.0
    for p in cohort:
        state = new_twin(p.patient_id)
        last_sev: float | None = None
        week = RecentMean()
        totals: list[float] = []
        raised: list[tuple[str, int]] = []
        rules: list[tuple[str, int]] = []
        bio_rules: list[tuple[str, int]] = []
        crossings: list[int] = []
        simple = BaselineDetectors()
        phq10_days: list[int] = []
        published = {name: GridMedian() for name in (ORACLE, *p.references)}
        for kind, rec in p.events:
            t = (rec["event_time"] // 86_400_000) - (p.events[0][1]["event_time"] // 86_400_000)
            phq9 = kind == "assessment" and rec["instrument"] == "PHQ9"
            if phq9 and t >= WARMUP_DAYS and state.forecast_phq9 is not None and totals:
                daily = week.mean()
                phq.add(
                    {
                        "twin": state.forecast_phq9,
                        "persistence": totals[-1],
                        "mean_2_totals": statistics.fmean(totals[-2:]),
                        "mean_7d_scaled": totals[-1] if daily is None else 2.5 * daily,
                    },
                    rec["total"],
                    patient=p.patient_id,
                )
            start = time.perf_counter()
            state, out = APPLY[kind](state, rec)
            elapsed += time.perf_counter() - start
            applied += 1
            assert isinstance(out, TwinOutputs)
            for alert in out.alerts:
                raised.append((alert["alert_type"], t))
                if alert["alert_type"] == "SUSTAINED_DETERIORATION":
                    rules.append((alert["evidence"].get("rule", "null"), t))
                if alert["alert_type"] == "BIOMETRIC_ANOMALY":
                    bio_rules.append((alert["evidence"].get("rule", "SINGLE_DAY"), t))
                gene_drug += alert["alert_type"] == "GENE_DRUG_INTERACTION"
            if phq9:
                simple.phq9(t, rec["total"])
                if totals and totals[-1] < 15 <= rec["total"]:
                    crossings.append(t)
                if rec["total"] >= 10:
                    phq10_days.append(t)
                totals.append(rec["total"])
                if rec["submission_id"] in p.item9_submissions:
                    item9_total += 1
                    item9_alerted += any(
                        a["alert_type"] == "ITEM9_SAFETY" and a["trigger_event_id"] == rec["event_id"]
                        for a in out.alerts
                    )
            if kind == "features":
                sev = p.severity[t]
                last_sev = sev if sev is not None else last_sev
                if sev is not None:
                    for reference in published.values():
                        reference.observe(sev)
                week.add(t, sev)
                simple.daily(t, sev)
                forecast = out.update["forecast_severity"] if out.update else None
                nxt = t + 1
                if t >= WARMUP_DAYS and nxt < days and forecast is not None and last_sev is not None:
                    mean7 = week.mean()
                    preds = {
                        "twin": forecast,
                        "persistence": last_sev,
                        "mean_7d": last_sev if mean7 is None else mean7,
                        "oracle": p.oracle[nxt],
                        **{k: v[nxt] for k, v in p.references.items() if v[nxt] is not None},
                    }
                    phase = trend_phase(p.expected, nxt)
                    sev_hidden.add(preds, p.mood[nxt], phase)
                    target = p.severity[nxt]
                    interval = getattr(state.severity, "pending_interval", None)  # older twins: none
                    if interval is not None:
                        sev_hidden.add_interval(interval[0], interval[1], p.mood[nxt], phase)
                    if target is not None:
                        points = {
                            name: ref.point(preds[name]) for name, ref in published.items() if name in preds
                        }
                        for name, point in points.items():
                            published[name].score(point, target)
                        preds = {**preds, **points}
                        sev_obs.add(preds, target, phase, p.patient_id)
                        for group in _groups(p):
                            by_group.setdefault(group, ForecastScore()).add(preds, target, phase)
                        if interval is not None:
                            sev_obs.add_interval(interval[0], interval[1], target, phase)
        det = sorted(d for a, d in raised if a == "SUSTAINED_DETERIORATION")
        for ep in p.episodes:
            episodes += 1
            hit = [d for d in det if ep.onset <= d <= ep.end]
            if hit:
                delays.append(hit[0] - ep.onset)
            else:
                missed += 1
            for group in _groups(p):
                detected_by_group.setdefault(group, [0, 0])[bool(hit)] += 1
        false_here = sum(1 for d in det if not any(ep.onset <= d <= ep.end + 21 for ep in p.episodes))
        false_alarms += false_here
        for group in _groups(p):
            counts = false_by_group.setdefault(group, [0, 0])
            counts[0] += false_here
            counts[1] += 1
        detection.add(p.episodes, rules, crossings, phq10_days)
        for name, alarm_days in {**simple.alarms, **p.reference_alarms}.items():
            baseline_detection.setdefault(name, EpisodeScore()).add(p.episodes, alarm_days)
        anom = [d for a, d in raised if a == "BIOMETRIC_ANOMALY"]
        for day in p.anomaly_days:
            anomaly_injected += 1
            anomaly_hits += day in anom
        anomaly_false += sum(1 for d in anom if d not in p.anomaly_days and not illness.covers(p.spells, d))
        illness.add(p.spells, p.anomaly_days, bio_rules)
        size = serialize.state_size(state)
        sizes.append(size["serialized"])
        pickles.append(size["pickle"])

    years = n * days / 365.0
    probe = cohort[0]
    start = time.perf_counter()
    rt = _replay(probe, roundtrip=True)
    rt_rate = len(probe.events) / (time.perf_counter() - start)
    groups = {
        group: {
            "severity_forecast": {
                k: v
                for k, v in score.report().items()
                if k == "pairs" or k.endswith("_mae") or k.startswith("improvement_") or k in REFERENCES
            },
            "episodes": sum(detected_by_group.get(group, [0, 0])),
            "episodes_detected": detected_by_group.get(group, [0, 0])[1],
            "patients": false_by_group[group][1],
            "false_alarms_per_patient_year": false_by_group[group][0]
            / (false_by_group[group][1] * days / 365.0),
        }
        for group, score in sorted(by_group.items())
    }
    return {
        "config": {
            "generator": generator,
            "patients": n,
            "days": days,
            "seed": seed + 4 if generator == "trajectories" else seed,
            "warmup_days": WARMUP_DAYS,
        },
        **({"by_group": groups} if groups else {}),
        "forecast_severity": {
            **sev_obs.report(),
            "vs_hidden_mood": sev_hidden.report(),
            "goal": ">= 0.10 lower MAE than mean_7d and >= 0.15 lower than persistence",
        },
        "forecast_phq9": phq.report(),
        "deterioration": {
            "episodes": episodes,
            "detected": episodes - missed,
            "missed": missed,
            "median_delay_days": statistics.median(delays) if delays else None,
            "false_alarms": false_alarms,
            "patient_years": years,
            "false_alarms_per_patient_year": false_alarms / years,
            "baselines": {name: score.report(years) for name, score in sorted(baseline_detection.items())},
            **detection.report(years),
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
            "note": "false alerts exclude illness spells (scored below)",
        },
        "illness_spells": illness.report(years),
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


def headline(section: dict[str, Any]) -> dict[str, Any]:
    """The figures of one generator's section that issue #16's goals are stated on."""
    det, sev = section["deterioration"], section["forecast_severity"]
    return {
        "seed": section["config"]["seed"],
        "episodes": det["episodes"],
        "detected": det["detected"],
        "detected_share": det["detected"] / det["episodes"] if det["episodes"] else None,
        "detected_share_ci95": share_interval(det["detected"], det["episodes"]),
        "median_delay_days": det["median_delay_days"],
        "false_alarms": det["false_alarms"],
        "patient_years": det["patient_years"],
        "false_alarms_per_patient_year": det["false_alarms_per_patient_year"],
        "false_alarms_per_patient_year_ci95": rate_interval(det["false_alarms"], det["patient_years"]),
        "phq9_15_crossings_in_episodes": det["phq9_15_crossings_in_episodes"],
        "phq9_15_crossings_in_episodes_under_alert": det["phq9_15_crossings_in_episodes_under_alert"],
        "median_delay_from_phq9_15_crossing_days": det["median_delay_from_phq9_15_crossing_days"],
        "episodes_reaching_phq9_10": det["episodes_reaching_phq9_10"],
        "detected_of_those": det["detected_of_those"],
        "median_delay_from_phq9_10_days": det["median_delay_from_phq9_10_days"],
        "median_delay_from_phq9_10_days_ci95": det["median_delay_from_phq9_10_days_ci95"],
        "delays_from_phq9_10_days": det["delays_from_phq9_10_days"],
        "item9_recall": section["item9"]["recall"],
        "severity_improvement_vs_mean_7d": sev["improvement_vs_mean_7d"],
        "severity_improvement_vs_mean_7d_ci95": sev.get("improvement_vs_mean_7d_ci95"),
        "severity_improvement_vs_persistence": sev["improvement_vs_persistence"],
        "severity_improvement_vs_persistence_ci95": sev.get("improvement_vs_persistence_ci95"),
        "bias_worsening": sev.get("bias_worsening", {}).get("twin"),
        "bias_improving": sev.get("bias_improving", {}).get("twin"),
        "state_bytes_max": section["state_bytes"]["serialized_max"],
        **{
            f"{ref}_improvement_vs_mean_7d": sev[ref]["improvement_vs_mean_7d"]
            for ref in REFERENCES
            if ref in sev
        },
        **{
            f"{name}_detector": {k: v for k, v in score.items() if k != "episodes"}
            for name, score in det["baselines"].items()
        },
        **{
            f"{ref}_bias_worsening": sev["bias_worsening"][ref]
            for ref in REFERENCES
            if ref in sev.get("bias_worsening", {})
        },
    }


def pooled(by_seed: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Each detector's episodes, false alarms and delays (from the noise-free PHQ-9 reaching 10)
    pooled over the seeds, per generator, with 95% intervals: a goal is judged on the pooled
    share, rate and median, and on whether the interval lies on its side of the goal, not on one
    draw that sampling noise can move by several points."""
    out: dict[str, Any] = {}
    for name in sorted({g for sections in by_seed.values() for g in sections}):
        heads = [sections[name] for sections in by_seed.values() if name in sections]
        detectors = {"twin": heads}
        for key in heads[0]:
            if key.endswith("_detector"):
                detectors[key.removesuffix("_detector")] = [h[key] for h in heads]
        years = sum(h["patient_years"] for h in heads)
        episodes = sum(h["episodes"] for h in heads)
        out[name] = {"seeds": [h["seed"] for h in heads], "patient_years": years}
        for detector, scores in detectors.items():
            detected = sum(s["detected"] for s in scores)
            false = sum(s["false_alarms"] for s in scores)
            delays = [d for s in scores for d in from_histogram(s["delays_from_phq9_10_days"])]
            out[name][detector] = {
                "episodes": episodes,
                "detected": detected,
                "detected_share": detected / episodes if episodes else None,
                "detected_share_ci95": share_interval(detected, episodes),
                "false_alarms": false,
                "false_alarms_per_patient_year": false / years,
                "false_alarms_per_patient_year_ci95": rate_interval(false, years),
                "median_delay_from_phq9_10_days": statistics.median(delays) if delays else None,
                "median_delay_from_phq9_10_days_ci95": median_interval(delays),
            }
    return out


def _seeds(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main() -> None:
    """Run the bench and write ``bench/results/twin_fidelity.json``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--seeds",
        type=_seeds,
        default=None,
        help="comma-separated seeds (overrides --seed); the first one's sections are written in full",
    )
    parser.add_argument("--generator", choices=(*GENERATORS, "both"), default="both")
    parser.add_argument(
        "--out",
        type=pathlib.Path,
        default=ROOT / "bench" / "results" / "twin_fidelity.json",
        help="where to write the JSON result",
    )
    args = parser.parse_args()
    names = list(GENERATORS) if args.generator == "both" else [args.generator]
    seeds = args.seeds or [args.seed]
    result: dict[str, Any] = {}
    by_seed: dict[str, dict[str, Any]] = {}
    for seed in seeds:
        sections = {name: run(args.patients, args.days, seed, name) for name in names}
        if not result:
            result.update(sections)
        by_seed[str(seed)] = {name: headline(section) for name, section in sections.items()}
    if len(seeds) > 1:
        result["by_seed"] = by_seed
        result["pooled"] = pooled(by_seed)
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
