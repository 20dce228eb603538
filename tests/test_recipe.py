import re
from pathlib import Path

import pytest
from conftest import ROOT, nlpforge

from nlpforge.errors import RecipeError
from nlpforge.recipe import load_recipe

MINIMAL = """\
name: demo
data:
  inputs: [corpora/support/conversations.jsonl]
model:
  path: models/tiny-support-llama
"""


@pytest.mark.parametrize("recipe", sorted((ROOT / "recipes").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_recipe_validates(recipe: Path) -> None:
    r = load_recipe(recipe)
    assert r.name == recipe.stem
    for path in r.data.inputs:
        assert (ROOT / path).is_file(), f"{recipe.name}: data input {path} is not in the repository"


def test_typo_and_wrong_type_reported_together_with_lines(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(MINIMAL + "train:\n  batch_size: eight\n  learning_rat: 0.001\n")
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    msg = str(err.value)
    assert "2 errors" in msg
    assert f"{path}:7: train.batch_size" in msg and "'eight'" in msg
    assert f"{path}:8: train.learning_rat: unknown key 'learning_rat'; did you mean 'learning_rate'?" in msg


def test_missing_section_and_unknown_top_level_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: demo\nmodle:\n  path: x\ndata:\n  inputs: [a.jsonl]\n")
    msg = str(pytest.raises(RecipeError, load_recipe, path).value)
    assert "model: required key is missing" in msg
    assert f"{path}:2: modle: unknown key 'modle'; did you mean 'model'?" in msg


def test_set_overrides_are_applied_and_validated(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(MINIMAL)
    r = load_recipe(path, ["train.max_steps=7", "clean.pii=[EMAIL_ADDRESS]", "train.learning_rate=1e-3"])
    assert r.train.max_steps == 7 and r.clean.pii == ["EMAIL_ADDRESS"] and r.train.learning_rate == 1e-3
    msg = str(pytest.raises(RecipeError, load_recipe, path, ["train.max_step=7", "peft.r=-1", "oops"]).value)
    assert "--set train.max_step=7" in msg and "did you mean 'max_steps'" in msg
    assert "--set peft.r=-1" in msg and "greater than 0" in msg
    assert "expected KEY.PATH=VALUE" in msg


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(MINIMAL + "train: [unclosed\n")
    msg = str(pytest.raises(RecipeError, load_recipe, path).value)
    assert str(path) in msg and "not valid YAML" in msg


def test_cli_check_reports_all_errors_and_exits_nonzero(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(MINIMAL + "seed: many\npeft:\n  rank: 8\n")
    proc = nlpforge("check", str(path), check=False)
    assert proc.returncode == 2
    assert "seed" in proc.stderr and "'many'" in proc.stderr
    assert "unknown key 'rank'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_check_shows_a_sample_with_its_loss_mask(tiny_model: Path) -> None:
    proc = nlpforge("check", "recipes/quickstart-chat.yaml", "--set", f"model.path={tiny_model}")
    out = proc.stdout
    assert "valid recipe" in out
    # the assistant's content and its end-of-turn token carry loss; system and user turns do not
    spans = re.findall(r"\[\[(.*?)\]\]", out, re.S)
    assert spans and all(s.endswith("<|im_end|>") for s in spans)
    assert "<|im_start|>assistant\n[[" in out
    assert not any("<|im_start|>" in s or "user" in s for s in spans)
    assert "<|im_start|>user\n" in out


def _bomb(levels: int = 9) -> str:
    """The "billion laughs": nine levels of nine aliases, under 400 bytes, 9**9 nodes expanded."""
    names = "abcdefghi"[:levels]
    lines = [f"{names[0]}: &{names[0]} [x, x, x, x, x, x, x, x, x]"]
    lines += [f"{cur}: &{cur} [{', '.join([f'*{prev}'] * 9)}]" for prev, cur in zip(names, names[1:])]
    return "\n".join(lines) + "\n"


def _load_measured(path: Path) -> tuple[str, float, int]:
    import time
    import tracemalloc

    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(RecipeError) as err:
            load_recipe(path)
        return str(err.value), time.perf_counter() - start, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_yaml_bombs_are_refused_at_once_naming_the_alias(tmp_path: Path) -> None:
    path = tmp_path / "laughs.yaml"
    path.write_text(MINIMAL + _bomb())
    msg, seconds, peak = _load_measured(path)
    assert re.search(rf"{re.escape(str(path))}:10: alias \*d: .*more than 10,000 YAML nodes with its aliases expanded", msg), msg
    assert seconds < 1 and peak < 20_000_000
    path.write_text(MINIMAL + "x: &r [*r]\n")
    msg, seconds, peak = _load_measured(path)
    assert f"{path}:6: alias *r is used inside its own anchor &r (a recursive structure)" in msg
    assert seconds < 1 and peak < 20_000_000
    path.write_text(MINIMAL + "x: " + "[" * 100_000 + "\n")
    msg, seconds, _ = _load_measured(path)
    assert f"{path}:6: the document nests deeper than 64 levels" in msg and seconds < 1


def test_recipe_file_size_and_encoding_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(MINIMAL + "# " + "x" * (1 << 20) + "\n")
    assert "a recipe is at most 1,048,576 bytes" in str(pytest.raises(RecipeError, load_recipe, path).value)
    path.write_bytes(MINIMAL.encode() + b"seed: \xff\n")
    assert "not UTF-8 text" in str(pytest.raises(RecipeError, load_recipe, path).value)
    path.write_bytes(b"\xef\xbb\xbf" + MINIMAL.encode())  # a BOM is fine
    assert load_recipe(path).name == "demo"
    path.write_text(MINIMAL + "seed: " + "9" * 5000 + "\n")  # Python refuses to build such an int
    assert "not a usable YAML value" in str(pytest.raises(RecipeError, load_recipe, path).value)


@pytest.mark.parametrize(
    "override,problem",
    [
        ("train.max_steps=-5", "greater than or equal to -1"),
        ("train.max_steps=0", "max_steps must be -1 (train for epochs) or > 0"),
        ("seed=1180591620717411303424", "less than or equal to 4294967295"),  # 2**70
        ("seed=-1", "greater than or equal to 0"),
        ("train.batch_size=1099511627776", "less than or equal to 2147483647"),
        ("train.threads=100000", "less than or equal to 4096"),
        ("clean.n_process=100000", "less than or equal to 4096"),
        ("peft.r=1000000000", "less than or equal to 65536"),
        ("clean.near_dedup.bands=100000", "less than or equal to 1024"),
        ("train.epochs=.inf", "finite number"),
        ("train.learning_rate=.nan", "finite number"),
    ],
)
def test_numbers_that_would_crash_later_are_refused(tmp_path: Path, override: str, problem: str) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(MINIMAL)
    msg = str(pytest.raises(RecipeError, load_recipe, path, [override]).value)
    assert f"--set {override}" in msg and problem in msg


def test_numbers_at_their_bounds_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(MINIMAL)
    r = load_recipe(path, ["train.max_steps=-1", f"seed={2**32 - 1}", "clean.n_process=4096", "clean.max_chars=5"])
    assert r.train.max_steps == -1 and r.seed == 2**32 - 1 and r.clean.max_chars == 5
    assert load_recipe(path, ["train.max_steps=1", "seed=0"]).train.max_steps == 1
