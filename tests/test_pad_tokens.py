"""Bases whose tokenizer has no pad token, or pads with eos (SmolLM2, Llama 3, Mistral), train and
export without anyone editing the tokenizer: nlpforge picks an unused special token, or adds
``<|pad|>`` and resizes the embeddings. Built here from a tiny Llama-3-style tokenizer and a random
Llama (LitGPT-style inline config), through the real pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from nlpforge.models import load_tokenizer, pick_pad_token
from nlpforge.pipeline import run_pipeline
from nlpforge.recipe import Recipe
from nlpforge.runs import RunDir

LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|> {{ m['content'] }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|> {% endif %}"
)
WORDS = "how much is the kettle it costs 49 dollars where my order ships today what colour red and blue user assistant system".split()


def llama3_style(folder: Path, with_end_of_text: bool) -> Path:
    """A Llama-3-style tokenizer (eos = <|eot_id|>, no pad token) and a random tiny Llama that matches it."""
    specials = ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "[UNK]"] + (["<|end_of_text|>"] if with_end_of_text else [])
    vocab = {t: i for i, t in enumerate(specials + WORDS)}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>", unk_token="[UNK]",
                                  additional_special_tokens=[t for t in specials if t not in ("<|begin_of_text|>", "<|eot_id|>", "[UNK]")])
    tok.chat_template = LLAMA3_TEMPLATE
    assert tok.pad_token is None
    tok.save_pretrained(folder)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                      max_position_embeddings=128, bos_token_id=0, eos_token_id=3, tie_word_embeddings=False)
    LlamaForCausalLM(cfg).save_pretrained(folder)
    return folder


def recipe(model: Path, corpus: Path, **extra: dict) -> Recipe:
    return Recipe.model_validate({
        "name": "pad", "data": {"inputs": [str(corpus)]}, "model": {"path": str(model), "max_length": 64}, "clean": {"min_words": 1, "quality": {"preset": "off"}},
        "train": {"max_steps": 2, "batch_size": 4, "threads": 1, "save_steps": 100},
        "eval": {"max_samples": 3, "max_new_tokens": 4, "compare_base": False, "factuality": {"enabled": False}, "report": False}, **extra,
    })


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    rows = [{"messages": [{"role": "user", "content": f"how much is the kettle {i}"}, {"role": "assistant", "content": "it costs 49 dollars"}]} for i in range(12)]
    path = tmp_path / "chats.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_an_unused_special_token_becomes_the_pad(tmp_path: Path, corpus: Path) -> None:
    model = llama3_style(tmp_path / "m", with_end_of_text=True)
    tok = load_tokenizer(recipe(model, corpus))
    assert tok.pad_token == "<|end_of_text|>" and len(tok) == 6 + len(WORDS)  # chosen, nothing added
    assert pick_pad_token(tok) == ("<|end_of_text|>", False)


def test_no_usable_pad_adds_one_trains_and_exports_merged(tmp_path: Path, corpus: Path) -> None:
    model = llama3_style(tmp_path / "m", with_end_of_text=False)
    r = recipe(model, corpus)
    tok = load_tokenizer(r)
    assert tok.pad_token == "<|pad|>" and tok.pad_token_id == 5 + len(WORDS)  # added after the vocabulary
    run = RunDir(tmp_path / "run")
    run_pipeline(r, Path("pad.yaml"), run, ["clean", "prepare", "train", "eval", "export"])
    meta = json.loads((run.root / "prepare/meta.json").read_text())
    assert meta["end_of_turn_token"] == "<|eot_id|>" and meta["pad_token"] == "<|pad|>" and meta["pad_token_id"] not in (meta["eos_token_id"], meta["end_of_turn_id"])
    rows = [json.loads(x) for x in (run.root / "prepare/train.jsonl").read_text().splitlines()]
    eot = meta["end_of_turn_id"]
    assert all(r["labels"][r["input_ids"].index(eot, 1) if r["input_ids"].count(eot) == 1 else -1] == eot for r in rows)  # the end of turn carries loss
    bundle = run.root / "export"
    gen = json.loads((bundle / "generation_config.json").read_text())
    cfg = json.loads((bundle / "config.json").read_text())
    assert eot in gen["eos_token_id"] and gen["pad_token_id"] == tok.pad_token_id and cfg["vocab_size"] == len(tok)
    # an adapter bundle cannot carry resized embeddings (vLLM refuses them): export says so
    from nlpforge.errors import ContractError

    with pytest.raises(ContractError, match="merge it"):
        run_pipeline(recipe(model, corpus, export={"format": "adapter"}), Path("pad.yaml"), run, ["export"])
