"""Dataset formats users bring, mapped to one canonical record per task.

The clean stage calls :func:`to_canonical` on every raw record, so the rows in
``clean/corpus.jsonl`` already have the canonical shape and the reject reasons name the
source ``file:line`` (added by the reader) and the recipe field to fix:

- chat formats (``messages``, ``alpaca``, ``sharegpt``) -> ``{messages_field: [{role, content}...]}``
- ``text`` -> ``{text_field: str}`` (continued pretraining)
- ``classification`` -> ``{text_field: str, "label": str | list[str]}`` (a list = multi-label)
- ``preference`` -> TRL's conversational DPO shape ``{"prompt": [...], "chosen": [...], "rejected": [...]}``
- ``kto`` -> TRL's conversational KTO shape ``{"prompt": [...], "completion": [...], "label": bool}``

Plain-string prompts and completions are lifted to one user / one assistant message, so
feedback exported by the server (`nlpforge feedback export`) and hand-written pairs read alike.
Columns not used by the format are kept (e.g. a ``group`` column for fairness reports).
"""

from __future__ import annotations

from typing import Any

from nlpforge.data.chat import check_messages

CHAT_FORMATS = ("messages", "alpaca", "sharegpt")
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "chatgpt": "assistant", "system": "system"}

# canonical field -> is it required; the recipe's data.columns maps these to source columns
COLUMNS: dict[str, dict[str, bool]] = {
    "messages": {"messages": True},
    "alpaca": {"instruction": True, "input": False, "output": True, "system": False},
    "sharegpt": {"conversations": True, "system": False},
    "text": {"text": True},
    "classification": {"text": True, "label": True},
    "preference": {"prompt": True, "chosen": True, "rejected": True, "system": False},
    "kto": {"prompt": True, "completion": True, "label": True, "system": False},
}


class FormatProblem(ValueError):
    """A record does not fit the format; the message is the reject reason."""


def message_fields(fmt: str, messages_field: str = "messages") -> tuple[str, ...]:
    """The fields of a canonical record that hold message lists (cleaned turn by turn)."""
    if fmt in CHAT_FORMATS:
        return (messages_field,)
    return {"preference": ("prompt", "chosen", "rejected"), "kto": ("prompt", "completion")}.get(fmt, ())


def column(data: Any, name: str) -> str:
    """Source column of canonical field ``name`` (data.columns, then the legacy *_field keys)."""
    if name in data.columns:
        return data.columns[name]
    return {"text": data.text_field, "messages": data.messages_field}.get(name, name)


def _get(record: dict, data: Any, name: str, required: bool) -> Any:
    col = column(data, name)
    if col not in record or record[col] is None:
        if required:
            hint = f" (mapped by data.columns.{name})" if name in data.columns else f" (map another column with data.columns.{name})"
            raise FormatProblem(f"invalid_schema: {data.format}: missing field '{col}'{hint}; present: {sorted(record)}")
        return None
    return record[col]


def _string(value: Any, data: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise FormatProblem(f"invalid_schema: {data.format}: field '{column(data, name)}' must be a non-empty string, got {type(value).__name__}")
    return value


def _messages(value: Any, data: Any, name: str, default_role: str) -> list[dict]:
    """A plain string becomes one message; a list must hold {role, content} dicts."""
    where = f"{data.format}: field '{column(data, name)}'"
    if isinstance(value, str):
        return [{"role": default_role, "content": _string(value, data, name)}]
    try:
        return check_messages(value, where)
    except ValueError as exc:
        raise FormatProblem(f"invalid_schema: {exc} (a string is one {default_role} message)") from None


def _label_bool(value: Any, data: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise FormatProblem(f"invalid_schema: kto: field '{column(data, 'label')}' must be true/false (desirable or not), got {value!r}")


def _class_label(value: Any, data: Any) -> str | list[str]:
    col = column(data, "label")
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | str) and str(value).strip():
        text = str(value).strip()
        sep = data.label_separator
        return [p.strip() for p in text.split(sep) if p.strip()] if sep else text
    if isinstance(value, list) and all(isinstance(v, int | str) and str(v).strip() for v in value):
        return [str(v).strip() for v in value]
    raise FormatProblem(f"invalid_schema: classification: field '{col}' must be a label (string or integer) or a list of labels (multi-label), got {value!r}")


def to_canonical(record: dict, data: Any) -> dict:
    """Convert one raw record of ``data.format``; raise FormatProblem with the reject reason."""
    fmt = data.format
    spec = COLUMNS[fmt]
    used = {column(data, name) for name in spec}
    extras = {k: v for k, v in record.items() if k not in used}
    values = {name: _get(record, data, name, required) for name, required in spec.items()}
    system = values.get("system")
    sys_msgs = [{"role": "system", "content": _string(system, data, "system")}] if system else []

    if fmt == "messages":
        return {**extras, data.messages_field: values["messages"]}  # validated turn by turn by clean
    if fmt == "alpaca":
        user = _string(values["instruction"], data, "instruction")
        if values["input"]:
            user += "\n\n" + _string(values["input"], data, "input")
        msgs = [*sys_msgs, {"role": "user", "content": user}, {"role": "assistant", "content": _string(values["output"], data, "output")}]
        return {**extras, data.messages_field: msgs}
    if fmt == "sharegpt":
        conv = values["conversations"]
        if not isinstance(conv, list) or not conv:
            raise FormatProblem(f"invalid_schema: sharegpt: field '{column(data, 'conversations')}' must be a non-empty list of {{from, value}} turns")
        msgs = list(sys_msgs)
        for i, turn in enumerate(conv):
            who = turn.get("from") if isinstance(turn, dict) else None
            if who not in SHAREGPT_ROLES or not isinstance(turn.get("value"), str):
                raise FormatProblem(f"invalid_schema: sharegpt: {column(data, 'conversations')}[{i}] needs 'from' in {sorted(SHAREGPT_ROLES)} and a string 'value'")
            msgs.append({"role": SHAREGPT_ROLES[who], "content": turn["value"]})
        return {**extras, data.messages_field: msgs}
    if fmt == "text":
        return {**extras, data.text_field: _string(values["text"], data, "text")}
    if fmt == "classification":
        return {**extras, data.text_field: _string(values["text"], data, "text"), "label": _class_label(values["label"], data)}
    prompt = sys_msgs + _messages(values["prompt"], data, "prompt", "user")
    if prompt[-1]["role"] == "assistant":
        raise FormatProblem(f"invalid_schema: {fmt}: field '{column(data, 'prompt')}' must end with a user turn, not an assistant one")
    if fmt == "preference":
        chosen = _messages(values["chosen"], data, "chosen", "assistant")
        rejected = _messages(values["rejected"], data, "rejected", "assistant")
        for name, msgs in (("chosen", chosen), ("rejected", rejected)):
            if msgs[-1]["role"] != "assistant":
                raise FormatProblem(f"invalid_schema: preference: field '{column(data, name)}' must end with an assistant turn")
        if chosen == rejected:
            raise FormatProblem("invalid_schema: preference: chosen and rejected are identical (nothing to learn)")
        return {**extras, "prompt": prompt, "chosen": chosen, "rejected": rejected}
    completion = _messages(values["completion"], data, "completion", "assistant")
    if completion[-1]["role"] != "assistant":
        raise FormatProblem(f"invalid_schema: kto: field '{column(data, 'completion')}' must end with an assistant turn")
    return {**extras, "prompt": prompt, "completion": completion, "label": _label_bool(values["label"], data)}
