"""Alerting rules, scrape config and dashboard: well formed, and only about metrics that exist.

Every ``novamind_*`` name in deploy/prometheus/alerts.yml and deploy/grafana/ must be one the
metrics module exposes, with labels it declares: renaming a metric fails here. With ``promtool``
on the PATH the rules and config are also checked, and the rules' unit tests run, by Prometheus
itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from novamind.platform import metrics

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "novamind-dashboard.json"

# Labels Prometheus adds to every scraped series (job, instance) or the scrape config sets.
TARGET_LABELS = {"job", "instance", "pod", "le"}
METRIC_TOKEN = re.compile(r"\bnovamind_[a-z0-9_]+\b")
SELECTOR = re.compile(r"\b(novamind_[a-z0-9_]+|up)\{([^}]*)\}")
MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"[^"]*"\s*')
RANGE = re.compile(r"\[([^\]]*)\]")
DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
SEVERITIES = {"critical", "warning", "info"}


def declared_series() -> dict[str, set[str]]:
    """{sample name as scraped: its labels} of every metric in novamind.platform.metrics."""
    series: dict[str, set[str]] = {}
    for value in vars(metrics).values():
        if not isinstance(value, MetricWrapperBase):
            continue
        name, kind, labels = value._name, value._type, set(value._labelnames)
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}[kind]
        for suffix in suffixes:
            series[name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return series


def alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]


def scrape_config() -> dict[str, Any]:
    return yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())


def job_names() -> set[str]:
    """Job labels the scrape config produces (job names, and jobs set by relabelling)."""
    jobs = set()
    for job in scrape_config()["scrape_configs"]:
        jobs.add(job["job_name"])
        jobs |= {r["replacement"] for r in job.get("relabel_configs", []) if r.get("target_label") == "job"}
    return jobs


def all_exprs() -> list[str]:
    return [rule["expr"] for rule in alert_rules()] + dashboard_exprs()


def promql_problems(expr: str) -> list[str]:
    """Lexical checks that catch most broken PromQL without a parser."""
    problems = []
    stripped = re.sub(r'"[^"]*"', '""', expr)
    if expr.count('"') % 2:
        problems.append("unbalanced quotes")
    for left, right in ("()", "[]", "{}"):
        depth = 0
        for char in stripped:
            depth += (char == left) - (char == right)
            if depth < 0:
                break
        if depth:
            problems.append(f"unbalanced {left}{right}")
    for window in RANGE.findall(stripped):
        if window != "$__rate_interval" and not DURATION.match(window):
            problems.append(f"bad range [{window}]")
    for name, selector in SELECTOR.findall(expr):
        for matcher in filter(None, selector.split(",")):
            if not MATCHER.fullmatch(matcher):
                problems.append(f"bad matcher {matcher!r} in {name}")
    if not (METRIC_TOKEN.search(expr) or "up{" in expr):
        problems.append("refers to no metric")
    return problems


# ---------------------------------------------------------------- metric names and labels
def test_the_helper_sees_every_declared_metric() -> None:
    series = declared_series()
    assert "novamind_dead_letters_total" in series and series["novamind_dead_letters_total"] == {
        "topic",
        "reason",
    }
    assert {"novamind_step_seconds_bucket", "novamind_step_seconds_count"} <= set(series)
    assert "novamind_events_in" not in series  # counters are scraped with _total


@pytest.mark.parametrize("source", ["alerts", "dashboard"])
def test_every_referenced_metric_is_declared(source: str) -> None:
    exprs = [r["expr"] for r in alert_rules()] if source == "alerts" else dashboard_exprs()
    declared = declared_series()
    used = {name for expr in exprs for name in METRIC_TOKEN.findall(expr)}
    assert used, f"the {source} refer to no novamind metric"
    assert used - set(declared) == set(), f"{source} use undeclared metrics"


def test_selector_labels_belong_to_the_metric() -> None:
    declared = declared_series()
    for expr in all_exprs():
        for name, selector in SELECTOR.findall(expr):
            labels = {m.group(1) for m in MATCHER.finditer(selector)}
            allowed = TARGET_LABELS | declared.get(name, set())
            assert labels <= allowed, f"{name} has no label {labels - allowed} ({expr})"


def test_grouping_labels_belong_to_some_metric_of_the_expression() -> None:
    declared = declared_series()
    for expr in all_exprs():
        names = set(METRIC_TOKEN.findall(expr))
        known = TARGET_LABELS | {label for name in names for label in declared.get(name, set())}
        for clause in re.findall(r"\b(?:by|on)\s*\(([^)]*)\)", expr):
            grouped = {label.strip() for label in clause.split(",") if label.strip()}
            assert grouped <= known, f"grouping by {grouped - known}, which no metric of {expr!r} has"


def test_the_metric_check_catches_a_renamed_metric() -> None:
    declared = declared_series()
    renamed = "sum(rate(novamind_dead_letter_total[5m]))"
    assert set(METRIC_TOKEN.findall(renamed)) - set(declared) == {"novamind_dead_letter_total"}


# ---------------------------------------------------------------- rules
def test_rules_are_well_formed() -> None:
    doc = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    groups = [g["name"] for g in doc["groups"]]
    assert len(groups) == len(set(groups))
    names = [rule["alert"] for rule in alert_rules()]
    assert len(names) == len(set(names)), "alert names must be unique"
    for rule in alert_rules():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}, rule[
            "alert"
        ]
        assert re.fullmatch(r"Novamind[A-Z][A-Za-z]+", rule["alert"])
        assert promql_problems(rule["expr"]) == [], rule["alert"]
        assert DURATION.match(str(rule.get("for", "0s"))), rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]


def test_the_lexical_check_catches_broken_promql() -> None:
    assert promql_problems("sum(rate(novamind_events_in_total[5m]))") == []
    assert "unbalanced ()" in promql_problems("sum(rate(novamind_events_in_total[5m])")
    assert "bad range [5 minutes]" in promql_problems("rate(novamind_events_in_total[5 minutes])")
    assert promql_problems('novamind_consumer_lag{topic="a",partition=0}') == [
        "bad matcher 'partition=0' in novamind_consumer_lag"
    ]


def test_the_alerts_cover_what_operators_must_know() -> None:
    exprs = {rule["alert"]: rule["expr"] for rule in alert_rules()}
    must = {
        "novamind_consumer_lag": "lag",
        "novamind_dead_letters_total": "dead letters",
        "novamind_twin_updates_total": "no twin updates",
        'up{job="novamind-workers"}': "worker down",
        "novamind_state_restore_remaining": "restore stuck",
        "novamind_pipeline_alerts_total": "pipeline alerts",
    }
    for needle, what in must.items():
        assert any(needle in expr for expr in exprs.values()), f"no alert on {what}"
    lag_rules = [e for e in exprs.values() if "novamind_consumer_lag" in e]
    assert any("deriv(" in e for e in lag_rules), "no alert on growing lag"


def test_rules_and_dashboard_use_jobs_the_scrape_config_produces() -> None:
    jobs = job_names()
    for expr in all_exprs():
        for job in re.findall(r'job="([^"]+)"', expr):
            assert job in jobs, f"job {job} is not scraped ({expr})"


# ---------------------------------------------------------------- scrape config
def test_scrape_config_loads_the_rules_and_scrapes_every_component() -> None:
    config = scrape_config()
    for rule_file in config["rule_files"]:
        assert (PROMETHEUS / rule_file).exists(), rule_file
    names = [job["job_name"] for job in config["scrape_configs"]]
    assert len(names) == len(set(names))
    assert {"novamind-workers", "novamind-intake", "novamind-connectors"} <= job_names()
    for job in config["scrape_configs"]:
        assert job.get("metrics_path", "/metrics") == "/metrics"
        assert job.get("kubernetes_sd_configs") or job.get("docker_sd_configs") or job.get("static_configs")


# ---------------------------------------------------------------- dashboard
def test_dashboard_is_a_grafana_dashboard_with_unique_panels() -> None:
    board = dashboard()
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 30
    assert any(v["name"] == "datasource" and v["type"] == "datasource" for v in board["templating"]["list"])
    panels = board["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        area = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not area & cells, f"panel {panel['title']!r} overlaps another"
        cells |= area
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert promql_problems(target["expr"]) == [], panel["title"]


def test_dashboard_shows_what_operators_watch() -> None:
    exprs = " ".join(dashboard_exprs())
    for needle in (
        "novamind_events_in_total",  # throughput
        "by (topic, partition) (novamind_consumer_lag)",  # lag per partition
        "histogram_quantile(0.5,",  # step latency p50
        "histogram_quantile(0.99,",  # and p99
        "by (reason) (rate(novamind_dead_letters_total",  # dead letters by reason
        "novamind_twin_updates_total",
        "novamind_twin_alerts_total",
        'up{job="novamind-workers"}',  # replicas
    ):
        assert needle in exprs, needle


# ---------------------------------------------------------------- promtool, where installed
PROMTOOL = shutil.which(os.environ.get("PROMTOOL", "promtool"))
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (or PROMTOOL unset); the checks above still ran"
)


def test_rule_tests_feed_declared_metrics() -> None:
    doc = yaml.safe_load((PROMETHEUS / "alerts.test.yml").read_text())
    assert doc["rule_files"] == ["alerts.yml"]
    declared = declared_series()
    tested = {rule["alertname"] for test in doc["tests"] for rule in test["alert_rule_test"]}
    assert tested <= {rule["alert"] for rule in alert_rules()}
    for test in doc["tests"]:
        for series in test["input_series"]:
            name, _, labels = series["series"].partition("{")
            assert name == "up" or name in declared, name
            used = {m.group(1) for m in MATCHER.finditer(labels.rstrip("}"))}
            assert used <= TARGET_LABELS | declared.get(name, set()), series["series"]


@needs_promtool
@pytest.mark.parametrize(
    "args",
    [
        ["check", "rules", "alerts.yml"],
        ["check", "config", "--syntax-only", "prometheus.yml"],
        ["test", "rules", "alerts.test.yml"],
    ],
)
def test_promtool_accepts_the_rules_and_config(args: list[str]) -> None:
    result = subprocess.run(
        [str(PROMTOOL), *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_parses_every_dashboard_query() -> None:
    for expr in dashboard_exprs():
        query = expr.replace("$__rate_interval", "5m")
        result = subprocess.run(
            [str(PROMTOOL), "--experimental", "promql", "format", query],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, f"{expr}: {result.stderr}"
