"""deploy/: the Prometheus alert rules, the Grafana dashboard and docker-compose.yml. They are
not run here (no Docker daemon, no Prometheus), so this checks what can drift: every series and
label they query is one `nlpforge serve` exports, and every file they mount exists."""

from __future__ import annotations

import json
import re

import yaml
from conftest import ROOT
from prometheus_client import CollectorRegistry

from nlpforge.serve.middleware import Metrics
from nlpforge.serve.monitor import Monitor

SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def exported() -> dict[str, set[str]]:
    """Series name -> label names, from the server's own registry."""
    metrics = Metrics(lambda: 0)
    Monitor(metrics.registry, drift={"vocabulary": [], "held_out": {}})  # a bundle with drift.json: the drift gauges too
    reg: CollectorRegistry = metrics.registry
    out: dict[str, set[str]] = {}
    for collector in set(reg._collector_to_names):  # noqa: SLF001 - the label names of unobserved metrics
        labels = set(getattr(collector, "_labelnames", ()))
        for family in collector.describe():
            for suffix in SUFFIXES[family.type]:
                out[family.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return out


def queries() -> list[str]:
    rules = yaml.safe_load((ROOT / "deploy/alerts.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    dash = json.loads((ROOT / "deploy/grafana/dashboards/nlpforge.json").read_text())
    exprs += [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(exprs) >= 15
    return exprs


def test_alerts_and_dashboard_query_only_what_the_server_exports() -> None:
    series = exported()
    assert {"nlpforge_hallucination_score_bucket", "nlpforge_finish_reasons_total", "nlpforge_feedback_total", "nlpforge_queue_depth",
            "nlpforge_input_oov_rate"} <= set(series)
    for expr in queries():
        for name, braces in re.findall(r"(nlpforge_[a-z_]+)(\{[^}]*\})?", expr):
            assert name in series, f"{name} in {expr!r} is not exported; the server has {sorted(series)}"
            for label in re.findall(r"(\w+)\s*=~?", braces or ""):
                assert label in series[name], f"{name} has no label {label} ({expr!r})"
        for grouped in re.findall(r"by \(([^)]*)\)", expr):
            used = {x.strip() for x in grouped.split(",")}
            names = re.findall(r"nlpforge_[a-z_]+", expr)
            assert any(used <= series[n] for n in names), f"by ({grouped}) in {expr!r}: not labels of {names}"


def test_compose_mounts_files_that_exist() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = [v.split(":")[0] for s in compose["services"].values() for v in s.get("volumes", []) if v.startswith("./")]
    assert mounts and all((ROOT / m).exists() or m == "./deploy/api_key" for m in mounts), mounts
    prom = yaml.safe_load((ROOT / "deploy/prometheus.yml").read_text())
    assert prom["scrape_configs"][0]["static_configs"][0]["targets"] == ["nlpforge:8000"]
