"""Benchmark SFT throughput: nlpforge's train stage against a plain TRL SFTTrainer with its
default settings, on the same tiny model, data, LoRA adapter, learning rate, batch size and
number of steps, measured in the same run.

Rows: nlpforge with packing (padding-free rows, per-sample position ids), nlpforge without
packing (length-grouped padded batches), TRL SFTTrainer defaults (padded batches in random
order, loss on every token). Columns: real (non-pad) tokens per second of training time,
share of padded slots in the batches, the training loss each trainer reports (TRL's
covers every token, nlpforge's the assistant turns only, so they are not comparable), and
the held-out loss on assistant tokens computed the same way for every adapter (comparable).

    python scripts/bench_train.py --steps 60 --batch-size 16 --threads 2
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=ROOT / "models/tiny-support-llama")
    ap.add_argument("--recipe", type=Path, default=ROOT / "recipes/quickstart-chat.yaml")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, help="also write the rows as JSON here")
    a = ap.parse_args()

    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from datasets import Dataset
    from peft import LoraConfig, PeftModel
    from rich.console import Console
    from rich.table import Table
    from trl import SFTConfig, SFTTrainer

    from nlpforge.artifacts import PrepareMeta
    from nlpforge.console import set_quiet
    from nlpforge.engines.bundle import BundleInfo
    from nlpforge.engines.hf import HFEngine
    from nlpforge.jsonl import read_jsonl
    from nlpforge.models import load_base, load_tokenizer
    from nlpforge.pipeline import run_pipeline
    from nlpforge.recipe import load_recipe
    from nlpforge.runs import RunDir
    from nlpforge.train.sft import CountingCollator, run_train

    set_quiet(True)
    torch.set_num_threads(a.threads)
    console = Console()
    work = Path(tempfile.mkdtemp(prefix="bench_train."))
    overrides = [f"model.path={a.model}", f"train.max_steps={a.steps}", f"train.batch_size={a.batch_size}", f"train.threads={a.threads}", "train.save_steps=100000", "train.logging_steps=5"]
    recipe = load_recipe(a.recipe, overrides)
    run = RunDir(work / "run")
    run_pipeline(recipe, a.recipe, run, ["clean", "prepare"])
    prepared = run.stage_dir("prepare")
    train_rows = read_jsonl(prepared / "train.jsonl")
    eval_rows = read_jsonl(prepared / "eval.jsonl")
    tok = load_tokenizer(recipe)
    info = BundleInfo.for_model("chat", PrepareMeta.read(prepared).stop_ids)

    def heldout(adapter: Path) -> float:
        model = PeftModel.from_pretrained(load_base(recipe), str(adapter)).merge_and_unload().eval()
        total, count = HFEngine.from_model(model, tok, info, 16).nll(eval_rows)
        return total / count

    results = []
    for name, packing in (("nlpforge (packing)", True), ("nlpforge (length-grouped, padded)", False)):
        r = load_recipe(a.recipe, [*overrides, f"train.packing={str(packing).lower()}"])
        s = run_train(r, prepared, work / name.split()[1].strip("()"))
        results.append({"setup": name, "tokens_per_s": s["tokens_per_second"], "padding_share": s["padding_share"], "train_loss": s["train_loss"],
                        "heldout_loss": heldout(work / name.split()[1].strip("()") / "adapter"), "seconds": s["seconds"]})

    # the baseline: TRL's SFTTrainer, defaults except what defines the experiment
    torch.manual_seed(recipe.seed)
    lora = LoraConfig(task_type="CAUSAL_LM", r=recipe.peft.r, lora_alpha=recipe.peft.alpha, lora_dropout=recipe.peft.dropout, target_modules=recipe.peft.target_modules)
    args = SFTConfig(
        output_dir=str(work / "trl"), max_steps=a.steps, per_device_train_batch_size=a.batch_size, learning_rate=recipe.train.learning_rate,
        lr_scheduler_type=recipe.train.lr_scheduler, warmup_steps=recipe.train.warmup_steps, seed=recipe.seed, save_strategy="no", report_to=[], use_cpu=True, logging_steps=5,
    )
    trainer = SFTTrainer(model=load_base(recipe), args=args, train_dataset=Dataset.from_list([{"messages": r["messages"]} for r in train_rows]), processing_class=tok, peft_config=lora)
    trainer.data_collator = CountingCollator(trainer.data_collator)
    start = time.time()
    out = trainer.train()
    seconds = time.time() - start
    trainer.model.save_pretrained(work / "trl/adapter")
    c = trainer.data_collator
    results.append({"setup": "TRL SFTTrainer (defaults)", "tokens_per_s": round(c.real / seconds, 1), "padding_share": round(1 - c.real / c.slots, 4), "train_loss": round(out.training_loss, 4),
                     "heldout_loss": heldout(work / "trl/adapter"), "seconds": round(seconds, 1)})

    base = results[-1]["tokens_per_s"]
    t = Table(title=f"SFT on {a.model.name}: {a.steps} steps x {a.batch_size} conversations, LoRA r={recipe.peft.r}, {a.threads} threads, {len(train_rows)} training conversations")
    for col in ("setup", "tokens/s", "vs TRL", "padding share", "train loss (own)", "held-out loss (assistant tokens)", "train seconds"):
        t.add_column(col, justify="right" if col != "setup" else "left")
    for r in results:
        t.add_row(r["setup"], f"{r['tokens_per_s']:.0f}", f"{r['tokens_per_s'] / base:.2f}x", f"{r['padding_share']:.1%}", f"{r['train_loss']:.3f}", f"{r['heldout_loss']:.3f}", f"{r['seconds']:.1f}")
    console.print(t)
    if a.json:
        a.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
