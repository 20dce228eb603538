"""Each PEFT method trains real steps on the tiny model (in process, 2 steps each); QLoRA
trains on a real NF4 base (bitsandbytes' CPU kernels) and exports merged into the dequantized
weights; DPO and KTO train through TRL on feedback-shaped rows."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from nlpforge.errors import StageError
from nlpforge.recipe import Recipe
from nlpforge.tasks import task_for

ROOT = Path(__file__).resolve().parents[1]

def run_prepare(r, corpus, out):  # noqa: ANN001, ANN201 - the prepare stage of the recipe's task
    return task_for(r).prepare(r, corpus, out)


def run_train(r, prepared, out):  # noqa: ANN001, ANN201 - the train stage of the recipe's task
    return task_for(r).train(r, prepared, out)



def make_recipe(model: Path, fmt: str = "messages", peft: dict | None = None, train: dict | None = None, max_length: int = 256) -> Recipe:
    return Recipe.model_validate(
        {
            "name": "t",
            "data": {"inputs": ["a"], "format": fmt},
            "model": {"path": str(model), "max_length": max_length},
            "peft": peft or {},
            "train": {"max_steps": 2, "batch_size": 4, "threads": 2, "logging_steps": 1, "save_steps": 100, **(train or {})},
        }
    )


@pytest.fixture(scope="module")
def chat_prepared(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("peft")
    lines = (ROOT / "corpora/support/conversations.jsonl").read_text().splitlines()[:40]
    corpus = tmp / "corpus.jsonl"
    corpus.write_text("\n".join(json.dumps({**json.loads(x), "source": f"a:{i}"}) for i, x in enumerate(lines)) + "\n")
    run_prepare(make_recipe(tiny_model), corpus, tmp / "prep")
    return tmp / "prep"


METHODS = {
    "lora": ({"method": "lora", "r": 4, "target_modules": ["q_proj", "v_proj"]}, "LORA"),
    "rslora": ({"method": "lora", "use_rslora": True}, "LORA"),
    "dora": ({"method": "lora", "use_dora": True}, "LORA"),
    "ia3": ({"method": "ia3"}, "IA3"),
    "prompt_tuning": ({"method": "prompt_tuning", "num_virtual_tokens": 4, "prompt_init_text": "You are a support assistant."}, "PROMPT_TUNING"),
}


@pytest.mark.parametrize("name", list(METHODS))
def test_peft_method_trains(name: str, tiny_model: Path, chat_prepared: Path, tmp_path: Path) -> None:
    peft, peft_type = METHODS[name]
    summary = run_train(make_recipe(tiny_model, peft=peft), chat_prepared, tmp_path)
    assert summary["steps"] == 2 and torch.isfinite(torch.tensor(summary["train_loss"]))
    assert 0 < summary["trainable_params"] < summary["total_params"] / 5
    cfg = json.loads((tmp_path / "adapter/adapter_config.json").read_text())
    assert cfg["peft_type"] == peft_type
    weights = load_file(tmp_path / "adapter/adapter_model.safetensors")
    if name == "lora":
        assert cfg["r"] == 4 and sorted(cfg["target_modules"]) == ["q_proj", "v_proj"]
    if name == "rslora":
        assert cfg["use_rslora"] is True
    if name == "dora":
        assert cfg["use_dora"] is True and any("lora_magnitude_vector" in k for k in weights)
    if peft_type == "LORA":  # B starts at zero: any non-zero B means the optimizer stepped
        assert any(float(v.abs().max()) > 0 for k, v in weights.items() if "lora_B" in k)
    if name == "ia3":  # IA3 vectors start at one
        assert any(float((v - 1).abs().max()) > 0 for v in weights.values())


def test_packing_trains_without_padding(tiny_model: Path, chat_prepared: Path, tmp_path: Path) -> None:
    summary = run_train(make_recipe(tiny_model, train={"packing": True}), chat_prepared, tmp_path)
    assert summary["packing"] is True and summary["padding_share"] == 0 and summary["steps"] == 2
    padded = run_train(make_recipe(tiny_model, train={"group_by_length": False}), chat_prepared, tmp_path / "padded")
    assert padded["padding_share"] > 0


def test_packed_rows_do_not_attend_across_samples(tiny_model: Path) -> None:
    from transformers import AutoModelForCausalLM

    from nlpforge.train.sft import packed_collator

    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    model.config.use_cache = False  # what build_model sets for packing
    a, b = list(range(5, 25)), list(range(30, 42))
    batch = packed_collator()([{"input_ids": a, "labels": a}, {"input_ids": b, "labels": b}])
    assert batch["labels"][0, 0] == -100 and batch["labels"][0, len(a)] == -100  # no loss across the boundary
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits[0]
        alone = model(input_ids=torch.tensor([b])).logits[0]
    assert torch.allclose(packed[len(a):], alone, atol=1e-4)


def test_qlora_trains_on_nf4_and_exports_merged_into_the_dequantized_weights(tiny_model: Path, chat_prepared: Path, tmp_path: Path) -> None:
    import bitsandbytes as bnb
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from nlpforge.artifacts import Manifest
    from nlpforge.export.bundle import run_export
    from nlpforge.models import load_base
    from nlpforge.train.sft import build_model

    r = make_recipe(tiny_model, peft={"method": "qlora", "r": 8}, train={"max_steps": 8, "learning_rate": 5e-3})
    assert isinstance(build_model(r).base_model.model.model.layers[0].self_attn.q_proj.base_layer, bnb.nn.Linear4bit)
    summary = run_train(r, chat_prepared, tmp_path / "train")
    adapter = tmp_path / "train/adapter"
    assert summary["steps"] == 8 and json.loads((adapter / "adapter_config.json").read_text())["peft_type"] == "LORA"
    run_export(r, chat_prepared, adapter, tmp_path / "eval", Manifest(), tmp_path / "export")
    bundle = tmp_path / "export"
    assert "quantization_config" not in json.loads((bundle / "config.json").read_text())  # plain weights vLLM loads as they are
    meta = json.loads((bundle / "nlpforge.json").read_text())
    assert meta["base_weights"] == "nf4-dequantized" and meta["merge_max_abs_diff"] < 1e-4
    assert "QLoRA" in (bundle / "README.md").read_text() and "merged into the base weights" in (bundle / "README.md").read_text()

    ids = torch.tensor([json.loads((chat_prepared / "eval.jsonl").read_text().splitlines()[0])["input_ids"]])
    # the 4-bit base + adapter computed as training computed it: bitsandbytes' CPU eval mode
    # swaps in a bf16 kernel, so train mode (dropout off) takes the training matmul path
    trained_model = PeftModel.from_pretrained(load_base(r, quantize=True), str(adapter)).train()
    for m in trained_model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    with torch.no_grad():
        trained = trained_model(input_ids=ids).logits
        served = AutoModelForCausalLM.from_pretrained(bundle).eval()(input_ids=ids).logits
        naive = PeftModel.from_pretrained(load_base(r, "float32"), str(adapter)).merge_and_unload()(input_ids=ids).logits
    assert float((served - trained).abs().max()) < 1e-4  # the bundle is the model QLoRA trained
    assert float((naive - trained).abs().max()) > 1e-2  # merging into the original weights would not be


@pytest.mark.parametrize("version,message", [(None, "not installed: pip install 'nlpforge\\[qlora\\]'"), ("0.45.0", "needs bitsandbytes>=0.50.*0.45.0 is installed")])
def test_qlora_without_a_usable_bitsandbytes_fails_before_loading(version: str | None, message: str, tiny_model: Path, chat_prepared: Path,
                                                                 tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if torch.cuda.is_available() and version is not None:
        pytest.skip("a GPU is present: any bitsandbytes release serves it")
    from nlpforge.train import peft_methods

    monkeypatch.setattr(peft_methods, "bnb_version", lambda: version)
    with pytest.raises(StageError, match=message):
        run_train(make_recipe(tiny_model, peft={"method": "qlora"}), chat_prepared, tmp_path)
    assert not (tmp_path / "adapter").exists()


def test_prompt_tuning_refuses_packing(tiny_model: Path) -> None:
    with pytest.raises(ValueError, match="cannot train on packed rows"):
        make_recipe(tiny_model, peft={"method": "prompt_tuning"}, train={"packing": True})


def _feedback(tmp: Path, kind: str) -> Path:
    """Rows in the shapes `nlpforge feedback export` writes, plus plain strings."""
    rows = []
    for i in range(24):
        prompt = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"How long is the warranty of the Zephyr Kettle, order {i}?"}]
        good, bad = "The Zephyr Kettle comes with a 24-month warranty.", "I don't know, check the website."
        if kind == "dpo":
            row = {"prompt": prompt, "chosen": [{"role": "assistant", "content": good}], "rejected": [{"role": "assistant", "content": bad}]}
            if i % 3 == 0:
                row = {"prompt": prompt[-1]["content"], "chosen": good, "rejected": bad}
        else:
            row = {"prompt": prompt, "completion": [{"role": "assistant", "content": good if i % 2 else bad}], "label": bool(i % 2)}
        rows.append({**row, "source": f"a:{i}"})
    path = tmp / f"{kind}.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


@pytest.mark.parametrize("task,fmt", [("dpo", "preference"), ("kto", "kto")])
def test_preference_tuning_through_trl(task: str, fmt: str, tiny_model: Path, tmp_path: Path) -> None:
    from nlpforge.data.formats import to_canonical

    r = make_recipe(tiny_model, fmt=fmt, train={"beta": 0.2})
    assert r.train.task == task
    raw = [json.loads(x) for x in _feedback(tmp_path, task).read_text().splitlines()]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(json.dumps({**to_canonical(x, r.data), "source": x["source"]}) for x in raw) + "\n")
    run_prepare(r, corpus, tmp_path / "prep")
    summary = run_train(r, tmp_path / "prep", tmp_path / "train")
    assert summary["task"] == task and summary["steps"] == 2 and summary["beta"] == 0.2
    assert torch.isfinite(torch.tensor(summary["train_loss"]))
    weights = load_file(tmp_path / "train/adapter/adapter_model.safetensors")
    assert any(float(v.abs().max()) > 0 for k, v in weights.items() if "lora_B" in k)
    log = [json.loads(x) for x in (tmp_path / "train/log.jsonl").read_text().splitlines()]
    assert any(k.startswith("rewards/") for row in log for k in row)  # TRL's preference metrics reach our log


def test_multi_label_classifier_trains(tmp_path: Path) -> None:
    rows = [{"text": f"my order {i} is late and I was charged twice", "label": ["shipping", "billing"], "source": f"a:{i}"} for i in range(6)]
    rows += [{"text": f"the app crashes on start {i}", "label": ["technical"], "source": f"a:{i + 6}"} for i in range(6)]
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    r = make_recipe("minilm", fmt="classification", train={"class_weights": True}, max_length=32)  # type: ignore[arg-type]
    run_prepare(r, corpus, tmp_path / "prep")
    meta = json.loads((tmp_path / "prep/meta.json").read_text())
    assert meta["multi_label"] and meta["labels"] == ["billing", "shipping", "technical"]
    summary = run_train(r, tmp_path / "prep", tmp_path / "train")
    assert summary["multi_label"] is True and summary["steps"] == 2
    cfg = json.loads((tmp_path / "train/adapter/adapter_config.json").read_text())
    assert "classifier" in cfg["modules_to_save"]
