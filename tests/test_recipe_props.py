"""Property tests of the recipe loader: whatever the YAML (random text, or nested maps, lists
and aliases dumped by PyYAML, shared and recursive structures included), ``load_recipe``
returns a Recipe or raises RecipeError, in well under a second."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nlpforge.errors import RecipeError
from nlpforge.recipe import Recipe, load_recipe

SETTINGS = settings(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
TOKENS = list("&*[]{}:,-?!|>'\"#%@` \n\t\r\ufeff") + list("abxy019.") + ["name", "seed", "data", "inputs", "model", "path", "train", "<<", "~", "!!binary", "!!python/object", "  "]
YAMLISH = st.lists(st.sampled_from(TOKENS), max_size=80).map("".join)
KEYS = st.sampled_from(["name", "seed", "data", "inputs", "format", "model", "path", "train", "max_steps", "clean", "peft", "r", "eval", "gates", "x", "<<"])
LEAVES = st.none() | st.booleans() | st.integers(-(2**80), 2**80) | st.floats() | st.text(max_size=12)
MINIMAL: dict[str, Any] = {"name": "demo", "data": {"inputs": ["a.jsonl"]}, "model": {"path": "m"}}


@st.composite
def shared_structures(draw: st.DrawFn) -> Any:
    """Maps and lists whose children are earlier nodes, so PyYAML dumps them as anchors and
    aliases; repeated references nest into alias bombs, and a node may hold itself."""
    pool: list[Any] = [draw(LEAVES) for _ in range(draw(st.integers(1, 4)))]
    for _ in range(draw(st.integers(1, 12))):
        children = [pool[draw(st.just(-1) | st.integers(0, len(pool) - 1))] for _ in range(draw(st.integers(0, 9)))]  # -1: chains that grow exponentially
        node: Any = dict(zip([draw(KEYS) for _ in children], children)) if draw(st.booleans()) else children
        if draw(st.integers(0, 19)) == 0:  # recursive
            if isinstance(node, dict):
                node[draw(KEYS)] = node
            else:
                node.append(node)
        pool.append(node)
    return pool[-1]


@st.composite
def recipes(draw: st.DrawFn) -> Any:
    """A valid minimal recipe with one section, key or the whole document replaced."""
    shape = draw(shared_structures())
    where = draw(st.sampled_from(["root", "top", "data", "train", "clean", "eval"]))
    if where == "root":
        return shape
    doc: dict[str, Any] = {**MINIMAL, "data": dict(MINIMAL["data"])}
    if where == "top":
        doc[draw(KEYS)] = shape
    elif where == "data":
        doc["data"][draw(KEYS)] = shape
    else:
        doc[where] = {draw(KEYS): shape} if draw(st.booleans()) else shape
    return doc


def _check(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        start = time.perf_counter()
        try:
            assert isinstance(load_recipe(path), Recipe)
        except RecipeError as exc:
            assert str(path) in str(exc)
        assert time.perf_counter() - start < 1


@settings(SETTINGS, max_examples=300)
@given(text=YAMLISH | st.text(max_size=200))
def test_any_text_loads_or_is_a_recipe_error(text: str) -> None:
    _check(text)


@settings(SETTINGS, max_examples=200)
@given(doc=recipes())
def test_any_structure_with_aliases_loads_or_is_a_recipe_error(doc: Any) -> None:
    _check(yaml.dump(doc, allow_unicode=True))
