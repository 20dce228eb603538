"""Fail before the hours are spent: the columns a recipe refers to must be in its data.

A recipe naming a column its files lack fails only where that column is first used, which
for ``eval.fairness.group_fields`` is after training. :func:`check_columns` reads the first
rows of every input through the same readers as the clean stage and names, per file, what
is missing and what is there. ``nlpforge check`` and the start of a run call it.
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path

from nlpforge.corpus.readers import SUFFIXES, expand, read_file
from nlpforge.data.formats import COLUMNS, column
from nlpforge.errors import DataError
from nlpforge.recipe import Recipe

SAMPLE_ROWS = 50
WHOLE_FILE = {"text", "html"}  # one record per file, holding only data.text_field


def required_columns(recipe: Recipe) -> dict[str, str]:
    """Source column -> the recipe key that asks for it."""
    data = recipe.data
    out = {}
    for name, required in COLUMNS[data.format].items():
        if required:
            key = f"data.columns.{name}" if name in data.columns else {"text": "data.text_field", "messages": "data.messages_field"}.get(name, f"data.format {data.format}")
            out.setdefault(column(data, name), key)
    if recipe.train.task == "classification":  # the only task whose eval reads group columns
        for g in recipe.eval.fairness.group_fields:
            out.setdefault(g, "eval.fairness.group_fields")
    return out


def file_columns(path: Path, text_field: str, rows: int = SAMPLE_ROWS) -> tuple[set[str], int, str | None]:
    """(columns seen in the first ``rows`` records, records parsed, the first parse error)."""
    seen: set[str] = set()
    parsed, error = 0, None
    for doc in islice(read_file(path, text_field), rows):
        if doc.record is None:
            error = error or f"{doc.source}: {doc.error}"
            continue
        parsed += 1
        seen.update(str(k) for k in doc.record)
    return seen, parsed, error


def check_columns(recipe: Recipe, rows: int = SAMPLE_ROWS) -> None:
    """Raise a DataError naming, per input file, the columns the recipe refers to that the
    file's first ``rows`` records lack, and the columns they have."""
    wanted = required_columns(recipe)
    problems = []
    for path in expand([p for p in recipe.data.all_inputs if "://" not in p]):  # URIs (clean.engine: ray) are read by the stage
        try:
            have, parsed, error = file_columns(path, recipe.data.text_field, rows)
        except DataError as exc:
            problems.append(str(exc))
            continue
        missing = [c for c in wanted if c not in have]
        if not missing or (parsed == 0 and error is None):  # an empty file has nothing to check
            continue
        asked = ", ".join(f"'{c}' ({wanted[c]})" for c in missing)
        if parsed == 0:
            problems.append(f"{path}: no readable record in the first {rows} to find {asked} in; first error: {error}")
        elif SUFFIXES[path.suffix.lower()] in WHOLE_FILE:
            problems.append(f"{path}: a {path.suffix} file is plain text, read into the column '{recipe.data.text_field}' (data.text_field) only; the recipe also needs {asked}")
        else:
            problems.append(f"{path}: missing {asked} in the {parsed} records read from its start; columns there: {', '.join(sorted(have))}")
    if problems:
        head = f"data.inputs: {len(problems)} file(s) lack columns the recipe uses; map a source column with data.columns (e.g. {{label: intent}}) or fix the name in the recipe"
        raise DataError(head + ":\n" + "\n".join(f"  - {p}" for p in problems))
