import json
from pathlib import Path

import build_tiny_model
import pytest

from nlpforge.data.chat import GENERATION_TAG, prompt_ids, render
from nlpforge.errors import RecipeError
from nlpforge.models import load_tokenizer
from nlpforge.recipe import Recipe
from nlpforge.tasks import task_for

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "How much is the Zephyr Kettle?"},
    {"role": "assistant", "content": "The Zephyr Kettle costs $49.00."},
    {"role": "user", "content": "And its warranty?"},
    {"role": "assistant", "content": "The Zephyr Kettle comes with a 24-month warranty."},
]


def recipe(model: Path, **model_kw) -> Recipe:
    return Recipe.model_validate({"name": "t", "data": {"inputs": ["x.jsonl"]}, "model": {"path": str(model), **model_kw}})


def test_loss_only_on_assistant_turns_including_end_of_turn(tiny_model: Path) -> None:
    tok = load_tokenizer(recipe(tiny_model))
    ids, mask = render(tok, MESSAGES)
    loss_text = tok.decode([i for i, m in zip(ids, mask) if m])
    assert loss_text == "The Zephyr Kettle costs $49.00.<|im_end|>The Zephyr Kettle comes with a 24-month warranty.<|im_end|>"
    eot = tok.convert_tokens_to_ids("<|im_end|>")
    # every end-of-turn token of an assistant turn is trained, none of the others is
    assert [m for i, m in zip(ids, mask) if i == eot] == [0, 0, 1, 0, 1]


def test_template_without_generation_tags_gives_the_same_mask(tiny_model: Path) -> None:
    plain = build_tiny_model.CHAT_TEMPLATE.replace("{%- generation -%}", "").replace("{%- endgeneration -%}", "")
    tagged = load_tokenizer(recipe(tiny_model))
    untagged = load_tokenizer(recipe(tiny_model, chat_template=plain))
    assert not GENERATION_TAG.search(untagged.chat_template) and GENERATION_TAG.search(tagged.chat_template)
    ids_a, mask_a = render(tagged, MESSAGES)
    ids_b, mask_b = render(untagged, MESSAGES)
    assert ids_a == ids_b
    # the prefix method stops at <|im_end|> too: the newline the template writes after it is not trained
    assert mask_a == mask_b


def test_generation_prompt_is_a_prefix_of_the_training_ids(tiny_model: Path) -> None:
    tok = load_tokenizer(recipe(tiny_model))
    ids, _ = render(tok, MESSAGES)
    prompt = prompt_ids(tok, MESSAGES[:-1])
    assert ids[: len(prompt)] == prompt
    assert tok.decode(prompt[-3:]) == "<|im_start|>assistant\n"


def test_pad_equal_to_eos_gets_a_distinct_pad_and_eos_keeps_its_loss(tiny_model: Path, tmp_path: Path) -> None:
    """SmolLM2 and Mistral ship pad == eos: nlpforge pads with an unused special token instead (never eos or end-of-turn)."""
    tok = load_tokenizer(recipe(tiny_model))
    tok.pad_token = tok.eos_token
    tok.save_pretrained(tmp_path)
    fixed = load_tokenizer(recipe(tmp_path))
    assert fixed.pad_token == "<|pad|>" and fixed.pad_token_id not in (fixed.eos_token_id, fixed.convert_tokens_to_ids("<|im_end|>"))
    ids, mask = render(fixed, MESSAGES)
    assert ids[max(i for i, m in enumerate(mask) if m)] == fixed.convert_tokens_to_ids("<|im_end|>")  # the end of turn still carries loss
    with pytest.raises(RecipeError, match="model.pad_token"):
        load_tokenizer(recipe(tmp_path, pad_token="<|im_end|>"))


def test_prepare_splits_and_rejects_overlong_samples(tiny_model: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    rows = [{"messages": MESSAGES, "source": f"c:{i}"} for i in range(9)]
    rows.append({"messages": [{"role": "user", "content": "word " * 400}, {"role": "assistant", "content": "ok"}], "source": "c:long"})
    corpus.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    r = recipe(tiny_model, max_length=128)
    summary = task_for(r).prepare(r, corpus, tmp_path / "prep")
    assert summary == {"train_rows": 8, "eval_rows": 1, "end_of_turn": "<|im_end|>"}
    meta = json.loads((tmp_path / "prep" / "meta.json").read_text())
    assert meta["rejected_too_long"] == 1
    assert meta["pad_token_id"] != meta["eos_token_id"] != meta["end_of_turn_id"]
    row = json.loads((tmp_path / "prep" / "train.jsonl").read_text().splitlines()[0])
    assert len(row["input_ids"]) == len(row["labels"])
    assert row["labels"][-2] == meta["end_of_turn_id"]  # last label: <|im_end|> (then the untrained newline)
    assert row["labels"][-1] == -100
    # training reads the token rows from a memory-mapped Arrow file that holds exactly what the JSONL holds
    from nlpforge.data import arrow

    rows = [json.loads(x) for x in (tmp_path / "prep" / "train.jsonl").read_text().splitlines()]
    ds = arrow.token_rows(tmp_path / "prep", "train")
    assert ds.cache_files and ds.cache_files[0]["filename"].endswith("train.arrow")  # mapped from disk, not loaded
    assert ds.to_list() == [{"input_ids": x["input_ids"], "labels": x["labels"]} for x in rows]
    (tmp_path / "prep" / "train.arrow").unlink()  # a run prepared before the Arrow files: the JSONL is read
    assert arrow.token_rows(tmp_path / "prep", "train") == ds.to_list()


def test_arrow_token_rows_stream_in_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nlpforge.data import arrow

    monkeypatch.setattr(arrow, "BATCH_ROWS", 3)
    rows = [{"input_ids": list(range(i + 1)), "labels": [-100] * i + [i], "source": f"s:{i}"} for i in range(8)]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert arrow.write_token_rows(tmp_path / "train.jsonl", tmp_path / "train.arrow") == 8
    assert arrow.token_rows(tmp_path, "train").to_list() == [{"input_ids": r["input_ids"], "labels": r["labels"]} for r in rows]
    (tmp_path / "eval.jsonl").write_text("")
    assert arrow.write_token_rows(tmp_path / "eval.jsonl", tmp_path / "eval.arrow") == 0 and len(arrow.token_rows(tmp_path, "eval")) == 0


def test_arrow_classifier_labels(tmp_path: Path) -> None:
    from nlpforge.data import arrow

    rows = [{"input_ids": [101, 7 + i, 102], "label_ids": i % 3, "text": "t"} for i in range(5)]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert arrow.write_token_rows(tmp_path / "train.jsonl", tmp_path / "train.arrow", "class") == 5
    assert arrow.token_rows(tmp_path, "train").to_list() == [{"input_ids": r["input_ids"], "labels": r["label_ids"]} for r in rows]
    multi = [{"input_ids": [101, 102], "label_ids": [1.0, 0.0, 1.0]}, {"input_ids": [101, 5, 102], "label_ids": [0.0, 0.0, 1.0]}]
    (tmp_path / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in multi))
    arrow.write_token_rows(tmp_path / "eval.jsonl", tmp_path / "eval.arrow", "multi_label")
    assert arrow.token_rows(tmp_path, "eval").to_list() == [{"input_ids": r["input_ids"], "labels": r["label_ids"]} for r in multi]
    (tmp_path / "eval.arrow").unlink()  # prepared before classifiers had Arrow files: the JSONL's label_ids
    assert arrow.token_rows(tmp_path, "eval") == [{"input_ids": r["input_ids"], "labels": r["label_ids"]} for r in multi]
    with pytest.raises(ValueError, match="valid values are tokens, class, multi_label"):
        arrow.write_token_rows(tmp_path / "eval.jsonl", tmp_path / "x.arrow", "regression")


def test_prepare_with_several_processes_writes_the_same_files(tiny_model: Path, tmp_path: Path) -> None:
    """data.num_proc tokenises through datasets.map in 2 processes: the same rows, in the same order."""
    corpus = tmp_path / "corpus.jsonl"
    rows = [{"messages": [*MESSAGES[:2], {"role": "assistant", "content": f"Answer {i}: " + "very " * (i % 13) + "good."}], "source": f"c:{i}"} for i in range(60)]
    rows[7]["messages"][0]["name"] = "ops"  # a key the other conversations lack
    rows.append({"messages": [{"role": "user", "content": "word " * 400}, {"role": "assistant", "content": "ok"}], "source": "c:long"})
    corpus.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = {}
    for n in (1, 2):
        r = Recipe.model_validate({"name": "t", "data": {"inputs": ["x.jsonl"], "num_proc": n}, "model": {"path": str(tiny_model), "max_length": 128}})
        task_for(r).prepare(r, corpus, tmp_path / f"p{n}")
        out[n] = {name: (tmp_path / f"p{n}" / name).read_bytes() for name in ("train.jsonl", "eval.jsonl", "rejects.jsonl", "meta.json", "train.arrow")}
    assert out[1] == out[2] and out[1]["rejects.jsonl"].count(b"too_long_tokens") == 1


def test_split_reads_the_corpus_by_offset_and_partitions_it(tmp_path: Path) -> None:
    """The split and the weights work on row positions: every row lands in exactly one split
    (with weights, train holds each input's rows whole times plus a seeded sample), the same
    seed gives the same split, and a row's text is read when used, not held."""
    from collections import Counter

    from nlpforge.data.splits import read_corpus, split_and_weight

    corpus = tmp_path / "corpus.jsonl"
    lines = [json.dumps({"source": f"{'a' if i % 3 else 'b'}.jsonl:{i}", "label": "xyz"[i % 3], "i": i}) for i in range(200)]
    corpus.write_text("\n".join(lines[:100]) + "\n\n" + "\n".join(lines[100:]) + "\n")  # a blank line is no row
    r = Recipe.model_validate({"name": "t", "seed": 3, "data": {"inputs": ["a.jsonl", "b.jsonl"], "splits": {"eval": 0.1}}, "model": {"path": "x"}})
    for stratify in (None, "label"):
        s = split_and_weight(r, read_corpus(corpus), stratify)
        ids = {k: [row["i"] for row in v] for k, v in s.items()}
        assert len(ids["eval"]) == 20 and sorted(ids["eval"] + ids["train"]) == list(range(200))
        assert ids == {k: [row["i"] for row in v] for k, v in split_and_weight(r, read_corpus(corpus), stratify).items()}
    assert Counter(row["label"] for row in s["eval"]) == {"x": 7, "y": 7, "z": 6}  # stratified
    weighted = r.model_copy(update={"data": r.data.model_copy(update={"weights": [2.0, 0.5]})})
    w = split_and_weight(weighted, read_corpus(corpus))
    per_input = Counter(row["source"][0] for row in w["train"])
    unweighted = Counter(row["source"][0] for row in split_and_weight(r, read_corpus(corpus))["train"])
    assert per_input == {"a": 2 * unweighted["a"], "b": round(unweighted["b"] * 0.5)}
    rows = read_corpus(corpus)
    corpus.write_text(corpus.read_text().replace('"label": "x"', '"label": "X"'))  # same length: offsets still hold
    assert rows[0]["label"] == "X" and rows[1:3].order == range(1, 3)
