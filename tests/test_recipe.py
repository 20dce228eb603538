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
