"""Run in a subprocess by test_engines.py (vLLM's LLM must start under __main__): the vLLM
engine's outputs for the inputs in a JSON file, written as JSON."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from nlpforge.engines import Sampling, load_engine


def main(spec_path: str, out_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    out: dict = {}
    t0 = time.time()
    engine = load_engine(Path(spec["bundle"]), "vllm", **spec.get("opts", {}))
    out["start_s"] = round(time.time() - t0, 1)
    if "conversations" in spec:
        res = engine.chat_generate(spec["conversations"], Sampling(**spec["sampling"]))
        out["chat"] = [[c.__dict__ for c in r] for r in res]
        for extra in spec.get("more_sampling", []):  # the same conversations under other sampling params
            res = engine.chat_generate(spec["conversations"], Sampling(**extra))
            out.setdefault("more_chat", []).append([[c.__dict__ for c in r] for r in res])
    if "prompts" in spec:
        res = engine.generate(spec["prompts"], Sampling(**spec["sampling"]))
        out["generate"] = [[c.__dict__ for c in r] for r in res]
    if "ppl_texts" in spec:
        out["perplexity"] = [p.__dict__ for p in engine.perplexity(spec["ppl_texts"])]
    if "classify_texts" in spec:
        out["classify"] = engine.classify(spec["classify_texts"])
    engine.close()
    Path(out_path).write_text(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
