"""check_columns: the columns a recipe refers to are found in its data before training starts."""

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nlpforge.data.columns import check_columns
from nlpforge.errors import DataError
from nlpforge.recipe import Recipe


def _recipe(inputs: list[Path], fmt: str, **kw) -> Recipe:
    data = {"inputs": [str(p) for p in inputs], "format": fmt, **kw.pop("data", {})}
    return Recipe.model_validate({"name": "t", "data": data, "model": {"path": "m"}, **kw})


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_fairness_group_missing_from_the_data_fails_before_training(tmp_path: Path) -> None:
    src = _jsonl(tmp_path / "a.jsonl", [{"text": "great", "label": "pos", "region": "eu"}] * 3)
    fair = {"eval": {"fairness": {"group_fields": ["region"]}}}
    check_columns(_recipe([src], "classification", **fair))
    bad = {"eval": {"fairness": {"group_fields": ["region", "gender"]}}}
    with pytest.raises(DataError) as err:
        check_columns(_recipe([src], "classification", **bad))
    msg = str(err.value)
    assert f"{src}: missing 'gender' (eval.fairness.group_fields) in the 3 records read from its start; columns there: label, region, text" in msg
    assert "'region'" not in msg.split("missing")[1].split(";")[0]
    check_columns(_recipe([src], "text", **bad))  # group fields are read by classification evals only


def test_required_columns_follow_data_columns_and_each_file_is_named(tmp_path: Path) -> None:
    good = _jsonl(tmp_path / "good.jsonl", [{"body": "fine", "intent": "refund"}])
    with open(tmp_path / "bad.csv", "w", newline="") as f:
        csv.writer(f).writerows([["body", "category"], ["x", "y"]])
    pq.write_table(pa.table({"body": ["a"], "intent": ["b"]}), tmp_path / "ok.parquet")
    recipe = _recipe([good, tmp_path / "bad.csv", tmp_path / "ok.parquet"], "classification", data={"columns": {"text": "body", "label": "intent"}})
    with pytest.raises(DataError) as err:
        check_columns(recipe)
    msg = str(err.value)
    assert "1 file(s)" in msg and "good.jsonl" not in msg and "ok.parquet" not in msg
    assert f"{tmp_path / 'bad.csv'}: missing 'intent' (data.columns.label) in the 1 records read from its start; columns there: body, category" in msg
    check_columns(_recipe([good], "classification", data={"columns": {"text": "body", "label": "intent"}}))


def test_chat_formats_and_text_field(tmp_path: Path) -> None:
    chat = _jsonl(tmp_path / "chat.jsonl", [{"conversation": [{"role": "user", "content": "hi"}]}])
    with pytest.raises(DataError, match=r"missing 'messages' \(data.messages_field\)"):
        check_columns(_recipe([chat], "messages"))
    check_columns(_recipe([chat], "messages", data={"messages_field": "conversation"}))
    alpaca = _jsonl(tmp_path / "alpaca.jsonl", [{"instruction": "a"}])  # input and system are optional
    with pytest.raises(DataError, match=r"missing 'output' \(data.format alpaca\)"):
        check_columns(_recipe([alpaca], "alpaca"))
    docs = _jsonl(tmp_path / "docs.jsonl", [{"body": "a document"}])
    with pytest.raises(DataError, match=r"missing 'text' \(data.text_field\)"):
        check_columns(_recipe([docs], "text"))
    check_columns(_recipe([docs], "text", data={"text_field": "body"}))


def test_plain_text_and_html_only_provide_the_text_field(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a document")
    (tmp_path / "b.html").write_text("<p>a page</p>")
    check_columns(_recipe([tmp_path / "a.txt", tmp_path / "b.html"], "text"))
    check_columns(_recipe([tmp_path / "a.txt"], "text", data={"text_field": "body"}))  # read into data.text_field, whatever its name
    with pytest.raises(DataError) as err:
        check_columns(_recipe([tmp_path / "a.txt"], "classification"))
    assert f"{tmp_path / 'a.txt'}: a .txt file is plain text, read into the column 'text' (data.text_field) only; the recipe also needs 'label' (data.format classification)" in str(err.value)


def test_only_the_first_rows_are_read_and_unusable_files_are_named(tmp_path: Path) -> None:
    src = tmp_path / "a.jsonl"
    src.write_text(json.dumps({"text": "x", "label": "y"}) + "\n" + "not json\n" * 10_000)
    check_columns(_recipe([src], "classification"))
    broken = tmp_path / "broken.jsonl"
    broken.write_text("not json\n" * 60 + json.dumps({"text": "x", "label": "y"}) + "\n")
    with pytest.raises(DataError, match=rf"{broken}: no readable record in the first 50 to find 'text' .*; first error: {broken}:1: invalid_json"):
        check_columns(_recipe([broken], "classification"))
    (tmp_path / "empty.jsonl").write_text("")  # nothing to check, nothing to complain about
    check_columns(_recipe([tmp_path / "empty.jsonl"], "classification"))
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 truncated")
    with pytest.raises(DataError, match=r"bad.parquet: cannot read this parquet file"):
        check_columns(_recipe([tmp_path / "bad.parquet"], "classification"))
