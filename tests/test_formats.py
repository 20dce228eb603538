"""Dataset formats through the real clean and prepare stages (tiny model tokenizer)."""

import json
from pathlib import Path

import pytest

from nlpforge.corpus.clean import run_clean
from nlpforge.data.formats import FormatProblem, to_canonical
from nlpforge.errors import DataError, RecipeError
from nlpforge.recipe import DataConfig, Recipe
from nlpforge.tasks import task_for

ALPACA = {"instruction": "How much is the Zephyr Kettle?", "input": "Answer in one sentence.", "output": "The Zephyr Kettle costs $49.00."}
SHAREGPT = {"conversations": [{"from": "system", "value": "Be brief."}, {"from": "human", "value": "Warranty of the Zephyr Kettle?"}, {"from": "gpt", "value": "24 months."}]}

def run_prepare(r, corpus, out):  # noqa: ANN001, ANN201 - the prepare stage of the recipe's task
    return task_for(r).prepare(r, corpus, out)



def data(fmt: str, **kw) -> DataConfig:
    return DataConfig.model_validate({"inputs": ["x.jsonl"], "format": fmt, **kw})


def test_chat_formats_become_messages() -> None:
    msgs = to_canonical(ALPACA, data("alpaca"))["messages"]
    assert msgs == [{"role": "user", "content": "How much is the Zephyr Kettle?\n\nAnswer in one sentence."}, {"role": "assistant", "content": "The Zephyr Kettle costs $49.00."}]
    assert [m["role"] for m in to_canonical(SHAREGPT, data("sharegpt"))["messages"]] == ["system", "user", "assistant"]
    mapped = to_canonical({"q": "Hi?", "a": "Hello.", "topic": "x"}, data("alpaca", columns={"instruction": "q", "output": "a"}))
    assert mapped == {"topic": "x", "messages": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}]}


def test_preference_and_kto_accept_strings_and_trl_conversations() -> None:
    plain = to_canonical({"prompt": "Hi?", "chosen": "Hello!", "rejected": "Go away."}, data("preference"))
    conv = to_canonical(
        {"prompt": [{"role": "user", "content": "Hi?"}], "chosen": [{"role": "assistant", "content": "Hello!"}], "rejected": [{"role": "assistant", "content": "Go away."}]},
        data("preference"),
    )
    assert plain == conv and plain["chosen"] == [{"role": "assistant", "content": "Hello!"}]
    kto = to_canonical({"prompt": "Hi?", "completion": "Hello!", "label": "true"}, data("kto"))
    assert kto["label"] is True and kto["prompt"] == [{"role": "user", "content": "Hi?"}]
    with pytest.raises(FormatProblem, match="'label' must be true/false"):
        to_canonical({"prompt": "Hi?", "completion": "Hello!", "label": "maybe"}, data("kto"))


def test_classification_labels_single_multi_and_separator() -> None:
    assert to_canonical({"text": "t", "label": 3}, data("classification"))["label"] == "3"
    assert to_canonical({"text": "t", "label": ["a", "b"]}, data("classification"))["label"] == ["a", "b"]
    assert to_canonical({"body": "t", "tags": "a|b"}, data("classification", label_separator="|", columns={"text": "body", "label": "tags"}))["label"] == ["a", "b"]


def test_recipe_rejects_unknown_column_and_bad_weights() -> None:
    with pytest.raises(ValueError, match="not a field of format alpaca"):
        data("alpaca", columns={"answer": "a"})
    with pytest.raises(ValueError, match="one per input"):
        data("messages", weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="train.task=dpo needs data.format preference"):
        Recipe.model_validate({"name": "t", "data": {"inputs": ["x"]}, "model": {"path": "m"}, "train": {"task": "dpo"}})


def test_clean_names_file_line_and_field_of_bad_rows(tmp_path: Path) -> None:
    src = tmp_path / "alpaca.jsonl"
    rows = [ALPACA, {"instruction": "Where is my order?"}, {"instruction": "Price of the Nimbus Speaker?", "output": "The Nimbus Speaker costs $89.00."}]
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    d = DataConfig.model_validate({"inputs": [str(src)], "format": "alpaca"})
    report = run_clean(d, Recipe.model_fields["clean"].default, tmp_path / "out")
    assert report["kept_docs"] == 2
    rej = [json.loads(x) for x in (tmp_path / "out/rejects.jsonl").read_text().splitlines()]
    assert rej[0]["source"] == f"{src}:2" and "missing field 'output'" in rej[0]["detail"] and "data.columns.output" in rej[0]["detail"]
    # a whole file in the wrong format fails with the first reason, not an empty dataset
    d = DataConfig.model_validate({"inputs": [str(src)], "format": "sharegpt"})
    with pytest.raises(DataError, match=r"format=sharegpt.*alpaca.jsonl:1.*missing field 'conversations'"):
        run_clean(d, Recipe.model_fields["clean"].default, tmp_path / "out2")


def _recipe(tiny_model: Path, fmt: str, **kw) -> Recipe:
    d = {"inputs": ["a.jsonl", "b.jsonl"], "format": fmt, **kw.pop("data", {})}
    return Recipe.model_validate({"name": "t", "seed": 1, "data": d, "model": {"path": str(tiny_model), "max_length": 64, **kw.pop("model", {})}, **kw})


def _corpus(tmp_path: Path, rows: list[dict]) -> Path:
    p = tmp_path / "corpus.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return p


def test_text_format_windows_with_eos_and_weights(tiny_model: Path, tmp_path: Path) -> None:
    rows = [{"text": "The Zephyr Kettle costs $49.00. " * 12, "source": f"a.jsonl:{i}"} for i in range(10)]
    rows += [{"text": "The Nimbus Speaker runs for 12 hours.", "source": f"b.jsonl:{i}"} for i in range(10)]
    r = _recipe(tiny_model, "text", data={"weights": [1.0, 0.5], "splits": {"eval": 0.2}})
    summary = run_prepare(r, _corpus(tmp_path, rows), tmp_path / "prep")
    train = [json.loads(x) for x in (tmp_path / "prep/train.jsonl").read_text().splitlines()]
    meta = json.loads((tmp_path / "prep/meta.json").read_text())
    assert all(len(t["input_ids"]) <= 64 and t["labels"] == t["input_ids"] for t in train)
    b_rows = [t for t in train if t["source"].startswith("b.jsonl")]
    assert b_rows and all(t["input_ids"][-1] == meta["eos_token_id"] for t in b_rows)
    n_b_train = sum(1 for x in rows if x["source"].startswith("b")) - sum(1 for x in (tmp_path / "prep/eval.jsonl").read_text().splitlines() if '"b.jsonl' in x)
    assert len(b_rows) == round(n_b_train * 0.5)  # weight 0.5: a seeded half of b's training rows
    assert summary["train_rows"] == len(train)


def test_classification_prepare_label_map_and_stratified_split(tiny_model: Path, tmp_path: Path) -> None:
    rows = [{"text": f"ticket number {i} about things", "label": lab, "channel": "chat", "source": f"a.jsonl:{i}"} for i, lab in enumerate(["b", "a", "c"] * 10)]
    r = _recipe(tiny_model, "classification", data={"splits": {"eval": 0.2}})
    run_prepare(r, _corpus(tmp_path, rows), tmp_path / "prep")
    meta = json.loads((tmp_path / "prep/meta.json").read_text())
    assert meta["labels"] == ["a", "b", "c"] and meta["multi_label"] is False
    held = [json.loads(x) for x in (tmp_path / "prep/eval.jsonl").read_text().splitlines()]
    assert sorted(h["label"] for h in held) == ["a", "a", "b", "b", "c", "c"]  # stratified
    assert all(h["label_ids"] == meta["labels"].index(h["label"]) and h["channel"] == "chat" for h in held)


def test_preference_prepare_writes_trl_rows_and_chat_rows(tiny_model: Path, tmp_path: Path) -> None:
    rows = [{"prompt": [{"role": "user", "content": f"Price of item {i}?"}], "chosen": [{"role": "assistant", "content": "It costs $49.00."}],
             "rejected": [{"role": "assistant", "content": "No idea."}], "source": f"a.jsonl:{i}"} for i in range(10)]
    r = _recipe(tiny_model, "preference")
    run_prepare(r, _corpus(tmp_path, rows), tmp_path / "prep")
    trl_rows = [json.loads(x) for x in (tmp_path / "prep/train_dpo.jsonl").read_text().splitlines()]
    assert set(trl_rows[0]) == {"prompt", "chosen", "rejected"} and len(trl_rows) == 9
    chat = json.loads((tmp_path / "prep/eval.jsonl").read_text().splitlines()[0])
    assert chat["messages"][-1]["content"] == "It costs $49.00." and len(chat["input_ids"]) == len(chat["labels"])
    assert json.loads((tmp_path / "prep/meta.json").read_text())["end_of_turn_token"] == "<|im_end|>"


def test_chat_template_from_a_file_and_a_missing_file(tiny_model: Path, tmp_path: Path) -> None:
    from nlpforge.models import load_tokenizer

    tpl = tmp_path / "t.jinja"
    tpl.write_text("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}")
    tok = load_tokenizer(_recipe(tiny_model, "messages", model={"chat_template": str(tpl)}))
    assert tok.chat_template == tpl.read_text()
    with pytest.raises(RecipeError, match="template file .*nope.jinja not found"):
        load_tokenizer(_recipe(tiny_model, "messages", model={"chat_template": str(tmp_path / "nope.jinja")}))
