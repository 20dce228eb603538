"""lm-evaluation-harness interop: a tiny local JSONL multiple-choice task run by
`nlpforge eval RECIPE --lm-eval TASK` on the tuned quickstart model (hf backend, base + adapter)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import nlpforge

pytestmark = [pytest.mark.slow]

QUESTIONS = [
    ("How long does standard shipping take?", ["Standard shipping takes 3 to 5 business days.", "Standard shipping takes two months."], 0),
    ("Does the Atlas Backpack have a battery?", ["The Atlas Backpack runs for 90 hours on a charge.", "The Atlas Backpack has no battery; it plugs into the wall."], 1),
    ("How much does the Zephyr Kettle cost?", ["The Zephyr Kettle costs $49.00.", "The Zephyr Kettle costs $4,900.00."], 0),
]


def write_task(folder: Path) -> None:
    data = folder / "support_mc.jsonl"
    data.write_text("".join(json.dumps({"question": q, "choices": c, "answer": a}) + "\n" for q, c, a in QUESTIONS))
    (folder / "support_mc.yaml").write_text(
        f"task: support_mc\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data}\ntest_split: test\noutput_type: multiple_choice\n"
        'doc_to_text: "Question: {{question}}\\nAnswer:"\ndoc_to_choice: choices\ndoc_to_target: answer\n'
        "metric_list:\n  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n"
    )


def test_lm_eval_task_results_are_folded_into_results_and_report(quickstart_run: Path, tiny_model: Path, tmp_path: Path) -> None:
    run = Path(shutil.copytree(quickstart_run, tmp_path / "run"))
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    write_task(tasks)
    nlpforge("eval", "recipes/quickstart-chat.yaml", "--quiet", "--run-dir", str(run), "--set", f"model.path={tiny_model}", "--set", "eval.max_samples=4",
             "--set", "eval.compare_base=false", "--lm-eval", "support_mc", "--set", f"eval.lm_eval.include_path={tasks}")
    results = json.loads((run / "eval/results.json").read_text())
    acc = results["lm_eval"]["support_mc"]["acc,none"]
    assert acc in (0.0, 1 / 3, 2 / 3, 1.0)  # three questions
    report = (run / "eval/report.html").read_text()
    assert "lm-evaluation-harness" in report and "support_mc" in report

    bad = nlpforge("eval", "recipes/quickstart-chat.yaml", "--quiet", "--run-dir", str(run), "--set", f"model.path={tiny_model}", "--set", "eval.max_samples=4",
                   "--set", "eval.compare_base=false", "--lm-eval", "no_such_task", "--set", f"eval.lm_eval.include_path={tasks}", check=False)
    assert bad.returncode == 1 and "unknown task(s) ['no_such_task']" in " ".join(bad.stderr.split())
