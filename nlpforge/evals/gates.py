"""Release gates: bounds from the recipe's ``eval.gates`` checked against the eval results.

A failed gate fails the eval stage (so the pipeline stops before export) and is recorded in
``results.json``; export refuses a run whose results hold a failed gate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nlpforge.artifacts import EvalResults
from nlpforge.errors import RecipeError, StageError
from nlpforge.recipe import GateConfig


class GateError(StageError):
    """One or more release gates failed: the model must not ship."""


def check_gates(gates: dict[str, GateConfig], results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per rule: ``{metric, rule, bound, value, passed}``. ``results`` holds ``tuned``
    (and ``base``/``delta`` when the base was evaluated)."""
    tuned, delta = results.get("tuned", {}), results.get("delta")
    rows = []
    for metric, gate in gates.items():
        if not isinstance(tuned.get(metric), int | float) or isinstance(tuned.get(metric), bool):
            valid = sorted(k for k, v in tuned.items() if isinstance(v, int | float) and not isinstance(v, bool))
            raise RecipeError(f"eval.gates.{metric}: no such metric in this eval's results (valid: {', '.join(valid)})")
        for rule in ("min", "max", "max_increase", "max_decrease"):
            bound = getattr(gate, rule)
            if bound is None:
                continue
            if rule in ("min", "max"):
                value = tuned[metric]
                passed = value >= bound if rule == "min" else value <= bound
            else:
                if delta is None or metric not in delta:
                    raise RecipeError(f"eval.gates.{metric}.{rule}: compares with the base model; set eval.compare_base: true")
                value = delta[metric]
                passed = value <= bound if rule == "max_increase" else -value <= bound
            rows.append({"metric": metric, "rule": rule, "bound": bound, "value": value, "passed": bool(passed)})
    return rows


def gate_message(rows: list[dict[str, Any]], blocked: str = "export blocked",
                 where: str = "eval.gates in the recipe; details in eval/results.json and eval/report.html") -> str:
    failed = [r for r in rows if not r["passed"]]
    what = {"min": "tuned {v} < min {b}", "max": "tuned {v} > max {b}", "max_increase": "rose by {v} > max_increase {b}", "max_decrease": "fell by {nv} > max_decrease {b}"}
    parts = [f"{r['metric']}: " + what[r["rule"]].format(v=round(r["value"], 4), nv=round(-r["value"], 4), b=r["bound"]) for r in failed]
    return f"{len(failed)} release gate(s) failed, {blocked}: " + "; ".join(parts) + f" ({where})"


def assert_gates_passed(results_path: Path) -> None:
    """Refuse to export a run whose eval recorded a failed gate."""
    if not results_path.is_file():
        return
    rows = [g.model_dump() for g in EvalResults.read(results_path).gates]
    if any(not r["passed"] for r in rows):
        raise GateError(gate_message(rows))
