"""Eval and export units on the artifacts of the session's quickstart run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from nlpforge.engines.bundle import BundleInfo
from nlpforge.engines.hf import HFEngine
from nlpforge.errors import ContractError
from nlpforge.evals.metrics import normalize_whitespace as normalize_answer
from nlpforge.export.bundle import check_contract


def rows(run: Path, n: int = 4) -> list[dict]:
    return [json.loads(x) for x in (run / "prepare/eval.jsonl").read_text().splitlines()[:n]]


def test_engine_nll_is_the_models_own_loss(quickstart_run: Path) -> None:
    bundle = quickstart_run / "export"
    model, tok = AutoModelForCausalLM.from_pretrained(bundle), AutoTokenizer.from_pretrained(bundle)
    sample = rows(quickstart_run, 3)
    total, count = HFEngine.from_model(model, tok, BundleInfo.for_model("chat", [3]), batch_size=2).nll(sample)  # batched with padding
    ref_total, ref_count = 0.0, 0
    with torch.inference_mode():
        for r in sample:  # one at a time, no padding: transformers' mean loss times the token count
            n = sum(1 for x in r["labels"][1:] if x != -100)
            ref_total += model(input_ids=torch.tensor([r["input_ids"]]), labels=torch.tensor([r["labels"]])).loss.item() * n
            ref_count += n
    assert count == ref_count
    assert total == pytest.approx(ref_total, rel=1e-4)


def test_engine_batched_generation_equals_one_by_one(quickstart_run: Path) -> None:
    bundle = quickstart_run / "export"
    model, tok = AutoModelForCausalLM.from_pretrained(bundle), AutoTokenizer.from_pretrained(bundle)
    prompts = [r["messages"][:-1] for r in rows(quickstart_run, 6)]
    stops = json.loads((bundle / "generation_config.json").read_text())["eos_token_id"]
    batched = HFEngine.from_model(model, tok, BundleInfo.for_model("chat", stops), batch_size=6).chat(prompts, 40)
    single = HFEngine.from_model(model, tok, BundleInfo.for_model("chat", stops), batch_size=1).chat(prompts, 40)
    assert [c.text for c in batched] == [c.text for c in single]
    assert all(c.finish_reason == "stop" and c.text for c in batched)


def test_normalize_answer() -> None:
    assert normalize_answer("  The  kettle\ncosts $49.00. ") == "The kettle costs $49.00."


@pytest.fixture()
def bundle_copy(quickstart_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(quickstart_run / "export", tmp_path / "bundle"))


def contract_args(run: Path) -> tuple:
    meta = json.loads((run / "prepare/meta.json").read_text())
    return rows(run), [meta["end_of_turn_id"], meta["eos_token_id"]], meta["end_of_turn_id"]


def test_contract_holds_on_the_exported_bundle(quickstart_run: Path, bundle_copy: Path) -> None:
    samples, stops, eot = contract_args(quickstart_run)
    assert check_contract(bundle_copy, samples, stops, eot, 512)["samples_checked"] == len(samples)


def test_contract_refuses_a_bundle_that_would_not_stop(quickstart_run: Path, bundle_copy: Path) -> None:
    samples, stops, eot = contract_args(quickstart_run)
    gen = json.loads((bundle_copy / "generation_config.json").read_text())
    gen["eos_token_id"] = [x for x in gen["eos_token_id"] if x != eot]
    (bundle_copy / "generation_config.json").write_text(json.dumps(gen))
    with pytest.raises(ContractError, match="lacks the end-of-turn id"):
        check_contract(bundle_copy, samples, stops, eot, 512)


def test_contract_refuses_a_template_that_renders_differently(quickstart_run: Path, bundle_copy: Path) -> None:
    samples, stops, eot = contract_args(quickstart_run)
    template = (bundle_copy / "chat_template.jinja").read_text()
    (bundle_copy / "chat_template.jinja").write_text(template.replace("'<|im_start|>' + message['role']", "'<|im_start|>' + message['role'] + ':'"))
    with pytest.raises(ContractError, match="renders .* to different ids than training"):
        check_contract(bundle_copy, samples, stops, eot, 512)


def test_contract_refuses_a_context_longer_than_the_model(quickstart_run: Path, bundle_copy: Path) -> None:
    samples, stops, eot = contract_args(quickstart_run)
    with pytest.raises(ContractError, match="exceeds the model's max_position_embeddings=512"):
        check_contract(bundle_copy, samples, stops, eot, 4096)
