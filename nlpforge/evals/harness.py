"""lm-evaluation-harness interop: run its tasks on the tuned model (``hf`` backend: base model +
LoRA adapter) or on a served endpoint (``local-completions``), and keep the numeric metrics."""

from __future__ import annotations

import os
from pathlib import Path

from nlpforge.console import log
from nlpforge.errors import StageError
from nlpforge.recipe import LmEvalConfig


def run_lm_eval(cfg: LmEvalConfig, base_model: str, adapter: Path | None, dtype: str = "float32") -> dict[str, dict[str, float]]:
    """``{task: {metric: value}}`` (lm-eval's ``acc,none`` keys kept as they are)."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import lm_eval
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=cfg.include_path) if cfg.include_path else TaskManager()
    unknown = [t for t in cfg.tasks if t not in tm.all_tasks]
    if unknown:
        hint = f" (tasks found under include_path {cfg.include_path} are {sorted(set(tm.all_tasks) - set(TaskManager().all_tasks))})" if cfg.include_path else ""
        raise StageError(f"eval.lm_eval.tasks: unknown task(s) {unknown}{hint}")
    if cfg.endpoint:
        model, args = "local-completions", f"base_url={cfg.endpoint.rstrip('/')}/completions,model={cfg.endpoint_model},tokenizer_backend=huggingface,tokenizer={base_model}"
    else:
        model, args = "hf", f"pretrained={base_model},dtype={dtype}" + (f",peft={adapter}" if adapter else "")
    log(f"eval: lm-evaluation-harness {','.join(cfg.tasks)} on {model}")
    res = lm_eval.simple_evaluate(model=model, model_args=args, tasks=list(cfg.tasks), task_manager=tm, device="cpu",
                                  batch_size=cfg.batch_size, limit=cfg.limit, num_fewshot=cfg.num_fewshot)
    out: dict[str, dict[str, float]] = {}
    for task, metrics in (res or {}).get("results", {}).items():
        out[task] = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    return out
