"""The dashboard and the alert rules query only metrics the server exports.

Every PromQL expression of `grafana-dashboard.json` and `alerts.yml` is read, and each metric
name in it must be a series of a live `ServerMetrics` (the server's own registry, resilience
metrics included). With Prometheus's `promtool` installed, the rules also pass its check.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.metrics_core import Metric

from rustok_server.observability.metrics import ServerMetrics

HERE = Path(__file__).parent
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
NAME = re.compile(r"\b(rustok_[a-z_]+)\b")


def exported_series() -> set[str]:
    families: list[Metric] = list(ServerMetrics().registry.collect())
    return {f.name + suffix for f in families for suffix in SUFFIXES[f.type]}


def dashboard_exprs() -> list[str]:
    dashboard = json.loads((HERE / "grafana-dashboard.json").read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]


def rule_exprs() -> list[str]:
    rules = yaml.safe_load((HERE / "alerts.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def test_every_dashboard_query_names_exported_metrics() -> None:
    exported = exported_series()
    exprs = dashboard_exprs()
    assert len(exprs) >= 10
    for expr in exprs:
        names = set(NAME.findall(expr))
        assert names, expr
        assert names <= exported, f"{expr}: {names - exported} not exported"


def test_every_alert_rule_names_exported_metrics_and_says_what_it_means() -> None:
    exported = exported_series()
    rules = yaml.safe_load((HERE / "alerts.yml").read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert {a["alert"] for a in alerts} >= {
        "RustokAvailabilityBudgetBurn",
        "RustokLatencySLO",
        "RustokCircuitBreakerOpenTooLong",
    }
    for alert in alerts:
        assert alert["annotations"]["summary"]
        assert alert["labels"]["severity"] in {"page", "ticket"}
        names = set(NAME.findall(alert["expr"]))
        assert names, alert["alert"]
        assert names <= exported, f"{alert['alert']}: {names - exported} not exported"


def test_the_dashboard_covers_what_operators_watch() -> None:
    titles = {
        p["title"] for p in json.loads((HERE / "grafana-dashboard.json").read_text())["panels"]
    }
    for needed in ("Request rate", "Error rate", "p99", "breaker", "cache hit", "transitions"):
        assert any(needed.lower() in t.lower() for t in titles), needed


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_rules() -> None:
    done = subprocess.run(
        ["promtool", "check", "rules", str(HERE / "alerts.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
