"""Each PEFT method trains real steps on the tiny model (in process, 2 steps each); QLoRA
fails clearly on a CPU; DPO and KTO train through TRL on feedback-shaped rows."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from nlpforge.data.prepare import run_prepare
from nlpforge.errors import StageError
from nlpforge.recipe import Recipe
from nlpforge.train.run import run_train

ROOT = Path(__file__).resolve().parents[1]


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


def test_qlora_on_cpu_fails_clearly_before_loading(tiny_model: Path, chat_prepared: Path, tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(StageError, match="qlora .*needs a CUDA GPU.*peft.method: lora"):
        run_train(make_recipe(tiny_model, peft={"method": "qlora"}), chat_prepared, tmp_path)


def test_prompt_tuning_refuses_packing(tiny_model: Path) -> None:
    with pytest.raises(ValueError, match="cannot train on packed rows"):
        make_recipe(tiny_model, peft={"method": "prompt_tuning"}, train={"packing": True})


def _feedback(tmp: Path, kind: str) -> Path:
    """Rows in the shapes `nlpforge feedback export` writes (CONTRACTS.md), plus plain strings."""
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
