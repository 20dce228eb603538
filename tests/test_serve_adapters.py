"""Adapter bundles for multi-LoRA: export checks refuse what vLLM cannot serve, and one
server answers for several adapters on one base, picked by the request's `model`, exactly as
transformers + PEFT do for the same adapter."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import nlpforge
from openai import AsyncOpenAI, OpenAI
from serve_util import Served, serve

from nlpforge.errors import ContractError
from nlpforge.export.adapters import add_adapter, check_adapter

QUESTIONS = ["How heavy is the Comet Earbuds?", "What colours does the Nova Kettle come in?"]


def adapter_copy(quickstart_run: Path, dest: Path, **changes: object) -> Path:
    out = Path(shutil.copytree(quickstart_run / "train/adapter", dest, ignore=shutil.ignore_patterns("checkpoint-*")))
    cfg = json.loads((out / "adapter_config.json").read_text())
    cfg.update(changes)
    (out / "adapter_config.json").write_text(json.dumps(cfg))
    return out


def test_adapters_vllm_cannot_serve_are_refused(quickstart_run: Path, tmp_path: Path) -> None:
    assert check_adapter(quickstart_run / "train/adapter", 16)["r"] == 16
    with pytest.raises(ContractError, match="rank 16 exceeds --max-lora-rank 8"):
        check_adapter(quickstart_run / "train/adapter", 8)
    with pytest.raises(ContractError, match="modules_to_save"):
        check_adapter(adapter_copy(quickstart_run, tmp_path / "a", modules_to_save=["lm_head"]), 16)
    with pytest.raises(ContractError, match="DoRA"):
        check_adapter(adapter_copy(quickstart_run, tmp_path / "b", use_dora=True), 16)
    with pytest.raises(ContractError, match="embeddings or the LM head"):
        check_adapter(adapter_copy(quickstart_run, tmp_path / "c", target_modules=["q_proj", "lm_head"]), 16)


def random_adapter(base: Path, out: Path) -> Path:
    """A second, different LoRA adapter on the same base (seeded random B, so it changes outputs)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(3)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base), LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def adapter_bundle(quickstart_run: Path, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = Path(shutil.copytree(quickstart_run, tmp_path_factory.mktemp("adapter-run") / "run"))
    proc = nlpforge("export", "recipes/quickstart-chat.yaml", "--run-dir", str(run), "--set", f"model.path={tiny_model}", "--set", "export.format=adapter")
    bundle = run / "export"
    printed = "".join(proc.stdout.split())  # the exact `vllm serve` command, adapter path anchored at the bundle
    assert "--enable-lora" in printed and f"quickstart-chat={bundle}/adapters/quickstart-chat".replace(" ", "") in printed
    add_adapter(bundle, "random", random_adapter(bundle, tmp_path_factory.mktemp("random") / "adapter"))
    return bundle


def test_adapter_export_writes_base_plus_adapters_and_serve_flags(adapter_bundle: Path) -> None:
    meta = json.loads((adapter_bundle / "nlpforge.json").read_text())
    assert meta["merged"] is False and meta["name"] == "quickstart-chat-base"
    assert meta["adapters"] == {"quickstart-chat": "adapters/quickstart-chat", "random": "adapters/random"}
    args = meta["serve"]["vllm_args"]
    assert args[args.index("--max-lora-rank") + 1] == "16" and args.count("--enable-lora") == 1
    assert args[args.index("--max-loras") + 1] == "3"  # one slot more than adapters, kept empty (lora_slots)
    assert args[args.index("--lora-modules") + 1 :][:2] == ["quickstart-chat=adapters/quickstart-chat", "random=adapters/random"]
    assert (adapter_bundle / "adapters/random/adapter_model.safetensors").is_file()


@pytest.fixture(scope="module", params=["vllm", "hf", "vllm-server"])
def server(request: pytest.FixtureRequest, adapter_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """vLLM multi-LoRA in nlpforge's server, the hf engine's PEFT multi-adapter model, and stock
    vLLM's server with the flags export prints."""
    with serve(adapter_bundle, tmp_path_factory.mktemp("lora") / "serve.log", "--engine", request.param, "--threads", "1") as s:
        yield s


@pytest.mark.slow
def test_one_server_many_adapters_each_answers_like_peft(server: Served, adapter_bundle: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from nlpforge.engines.bundle import BundleInfo
    from nlpforge.engines.hf import HFEngine

    c = OpenAI(base_url=f"{server.url}/v1", api_key="none", max_retries=0)
    assert {m.id for m in c.models.list().data} == {"quickstart-chat-base", "quickstart-chat", "random"}
    tok = AutoTokenizer.from_pretrained(adapter_bundle)
    stops = json.loads((adapter_bundle / "generation_config.json").read_text())["eos_token_id"]
    convs = [[{"role": "user", "content": q}] for q in QUESTIONS]
    answers = {}
    for name in ("quickstart-chat-base", "quickstart-chat", "random"):
        model = AutoModelForCausalLM.from_pretrained(adapter_bundle)
        if name != "quickstart-chat-base":
            model = PeftModel.from_pretrained(model, str(adapter_bundle / "adapters" / name))
        engine = HFEngine.from_model(model, tok, BundleInfo.for_model("chat", stop_ids=stops))
        want = [x.text for x in engine.chat(convs, 24)]
        got = [c.chat.completions.create(model=name, messages=m, max_tokens=24).choices[0].message.content for m in convs]
        assert got == want, name
        answers[name] = got
    assert len({tuple(v) for v in answers.values()}) == 3  # three different models behind one server

    async def mixed() -> list[str]:  # concurrent requests for different adapters (one batch on the hf engine)
        async with AsyncOpenAI(base_url=f"{server.url}/v1", api_key="none", max_retries=0) as ac:
            names = ["random", "quickstart-chat-base", "quickstart-chat"]
            rs = await asyncio.gather(*(ac.chat.completions.create(model=n, messages=convs[0], max_tokens=24) for n in names))
            return [r.choices[0].message.content for r in rs]

    assert asyncio.run(mixed()) == [answers["random"][0], answers["quickstart-chat-base"][0], answers["quickstart-chat"][0]]
