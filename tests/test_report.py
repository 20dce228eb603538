"""The HTML report: rendered from synthetic chat and classification runs, then opened in
headless Chromium to check that it renders with every embedded image decoded."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from nlpforge.evals.metrics import classification_metrics
from nlpforge.evals.report import write_report

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHECK_JS = """<script>window.addEventListener('load', () => {
  const imgs = [...document.images];
  document.body.setAttribute('data-images', imgs.length);
  document.body.setAttribute('data-decoded', imgs.filter(i => i.complete && i.naturalWidth > 0).length);
});</script></body>"""


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def chat_run(root: Path) -> Path:
    rng = np.random.default_rng(0)
    (root / "eval").mkdir(parents=True)
    results = {"task": "chat", "base": {"loss": 2.1, "exact_match": 0.1, "hallucination_score": 0.4}, "tuned": {"loss": 0.9, "exact_match": 0.6, "hallucination_score": 0.45},
               "delta": {"loss": -1.2, "exact_match": 0.5, "hallucination_score": 0.05},
               "gates": [{"metric": "hallucination_score", "rule": "max_increase", "bound": 0.02, "value": 0.05, "passed": False}], "passed": False}
    (root / "eval/results.json").write_text(json.dumps(results))
    _write_jsonl(root / "eval/samples.jsonl", [{"reference": "It costs $49 <b>.", "base": "No idea", "tuned": "It costs $49.",
                                                "base_factuality": {"hallucination_score": float(rng.random())}, "tuned_factuality": {"hallucination_score": float(rng.random())}} for _ in range(20)])
    _write_jsonl(root / "train/log.jsonl", [{"step": s, "epoch": s / 10, "loss": 3 / (1 + s)} for s in range(0, 50, 10)])
    return root


def classification_run(root: Path) -> Path:
    rng = np.random.default_rng(1)
    labels = ["approve", "review", "reject"]
    y = list(rng.choice(labels, 60))
    probs = rng.dirichlet([1, 1, 1], 60)
    pred = [labels[int(p.argmax())] for p in probs]
    results = {"task": "classification", "labels": labels, "metrics": classification_metrics(y, pred, labels, probs.tolist()),
               "fairness": {"groups": {"region": {"demographic_parity_difference": 0.2,
                                                       "per_group": {"north": {"accuracy": 0.7, "positive_rate": 0.4}, "south": {"accuracy": 0.55, "positive_rate": 0.2}}}},
                            "counterfactual": {"variants": 10, "flip_rate": 0.1, "mean_prob_shift": 0.05}}}
    (root / "eval").mkdir(parents=True)
    (root / "eval/results.json").write_text(json.dumps(results))
    _write_jsonl(root / "eval/predictions.jsonl", [{"text": "t", "label": t, "probs": p.tolist(), "pred": q} for t, p, q in zip(y, probs, pred)])
    return root


def open_in_chromium(page: Path, tmp_path: Path) -> str:
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", CHECK_JS))
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium not installed (.ci/run installs it)")
@pytest.mark.parametrize("make, n_images, texts", [
    (chat_run, 2, ["GATES FAILED", "hallucination_score of the answers", "training loss", "&lt;b&gt;"]),
    (classification_run, 4, ["confusion matrix", "calibration", "accuracy per region", "no gates", "flip rate 0.1"]),
])
def test_report_renders_in_headless_chromium_with_its_images(make, n_images: int, texts: list[str], tmp_path: Path) -> None:
    run = make(tmp_path / "run")
    page = write_report(run, run / "eval/report.html")
    text = page.read_text()
    assert "http://" not in text and "https://" not in text  # self-contained
    for t in texts:
        assert t in text
    dom = open_in_chromium(page, tmp_path)
    images = re.search(r'data-images="(\d+)"', dom)
    decoded = re.search(r'data-decoded="(\d+)"', dom)
    assert images and decoded, dom[:500]
    assert int(images.group(1)) == n_images and int(decoded.group(1)) == n_images


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium not installed (.ci/run installs it)")
def test_the_chromium_check_sees_a_broken_image(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text('<!doctype html><html><body><img src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB"></body></html>')
    dom = open_in_chromium(page, tmp_path)
    assert 'data-images="1"' in dom and 'data-decoded="0"' in dom
