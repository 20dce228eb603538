"""Example feedback files in the shapes `nlpforge feedback export` writes, for
the DPO/KTO recipes: the support corpus's reference answers are the preferred replies,
evasive or wrong replies the rejected ones. Deterministic:

    python scripts/make_feedback.py --out corpora/feedback
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BAD = [
    "I'm not sure, please check our website.",
    "Sorry, I can't help with that.",
    "Please contact support for this question.",
    "That depends on many factors.",
]


def make(n: int = 200, seed: int = 3) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed)
    convs = []
    for line in (ROOT / "corpora/support/conversations.jsonl").read_text().splitlines():
        try:
            c = json.loads(line)  # the corpus holds broken lines on purpose (for clean): skip them
        except json.JSONDecodeError:
            continue
        msgs = c.get("messages") if isinstance(c, dict) else None
        if isinstance(msgs, list) and msgs and all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in msgs) and msgs[-1].get("role") == "assistant":
            convs.append(c)
    picked = rng.sample(convs, min(n, len(convs)))
    dpo, kto = [], []
    for i, c in enumerate(picked):
        prompt, good = c["messages"][:-1], c["messages"][-1]
        bad = {"role": "assistant", "content": rng.choice(BAD)}
        dpo.append({"prompt": prompt, "chosen": [good], "rejected": [bad]})
        kto.append({"prompt": prompt, "completion": [good if i % 2 == 0 else bad], "label": i % 2 == 0})
    return dpo, kto


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "corpora/feedback")
    a = ap.parse_args()
    dpo, kto = make()
    a.out.mkdir(parents=True, exist_ok=True)
    for name, rows in (("dpo.jsonl", dpo), ("kto.jsonl", kto)):
        (a.out / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"wrote {len(dpo)} DPO pairs and {len(kto)} KTO rows to {a.out}")
