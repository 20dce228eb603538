"""What each scoring task reads from a row, what it asks the engine, and what it adds.

``prepare`` turns one input record into an engine item or raises :class:`RowError` (the row
goes to the rejects file with the reason); ``run`` scores a list of items in one engine call
(the engine sorts them by length into batches); ``add`` holds the fields written beside the
input columns."""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from typing import Any

from nlpforge.data.chat import prompt_ids, text_content
from nlpforge.engines import Engine, Sampling
from nlpforge.engines.base import decide
from nlpforge.errors import StageError

TASKS = ("generate", "chat", "classify", "perplexity", "factuality")
ROLES = {"system", "user", "assistant", "tool", "developer"}


class RowError(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


@dataclass
class ScoreOptions:
    text_field: str | None = None
    prompt_template: str | None = None
    sampling: Sampling | None = None
    source_field: str = "source"
    output_field: str = "output"
    reference_field: str | None = None


def _text(record: dict, field: str) -> str:
    if field not in record or record[field] is None:
        raise RowError("missing_field", f"no {field!r} field (fields: {', '.join(map(str, record)) or 'none'}); choose one with --text-field")
    value = record[field]
    if not isinstance(value, str):
        raise RowError("invalid_field", f"{field!r} is {type(value).__name__}, expected text")
    if not value.strip():
        raise RowError("empty_text", f"{field!r} is empty")
    return value


def _template(template: str, record: dict) -> str:
    try:
        return template.format_map(record)
    except KeyError as exc:
        raise RowError("missing_field", f"--prompt-template names {exc.args[0]!r}, which this row lacks (fields: {', '.join(map(str, record))})") from None
    except (ValueError, IndexError) as exc:
        raise RowError("template_error", f"--prompt-template: {exc}") from None


def parse_messages(value: Any, field: str) -> list[dict]:
    """A conversation: a list of {role, content}, or its JSON text (CSV cells), or a plain string (one user turn)."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            try:
                value = json.loads(stripped)
            except json.JSONDecodeError as exc:
                raise RowError("invalid_messages", f"{field!r} looks like JSON but does not parse: {exc.msg}") from None
        else:
            return [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise RowError("invalid_messages", f"{field!r} must be a non-empty list of {{role, content}} messages or a string")
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str | list):
            raise RowError("invalid_messages", f"{field}[{i}] must be {{role: one of {sorted(ROLES)}, content: str}}, got {str(m)[:80]}")
        try:
            out.append({"role": m["role"], "content": text_content(m["content"])})
        except ValueError as exc:
            raise RowError("invalid_messages", f"{field}[{i}].{exc}") from None
    return out


class Task:
    name = ""
    needs_engine = True
    added: tuple[str, ...] = ()

    def __init__(self, engine: Engine | None, opts: ScoreOptions):
        self.engine = engine
        self.opts = opts

    def prepare(self, record: dict) -> Any:
        raise NotImplementedError

    def run(self, items: list[Any], records: list[dict]) -> list[dict]:
        raise NotImplementedError

    def output(self, record: dict, added: dict) -> dict:
        """The output row: the input columns kept, the scores added."""
        return {**record, **added}

    def error_output(self, doc: Any, err: RowError) -> dict | None:
        """An output row for a bad input row, or None to send it to the rejects file."""
        return None


class _Generation(Task):
    added = ("generation", "finish_reason")

    @property
    def params(self) -> Sampling:
        return self.opts.sampling or self.engine.info.defaults  # type: ignore[union-attr]

    def _check_length(self, ids: list[int]) -> list[int]:
        limit = self.engine.max_length  # type: ignore[union-attr]
        if limit and len(ids) + self.params.max_tokens > limit:
            raise RowError("too_long", f"prompt of {len(ids)} tokens + max_tokens {self.params.max_tokens} exceeds the model's context of {limit}")
        return ids

    def _fields(self, choices: list) -> dict:
        if self.params.n == 1:
            c = choices[0]
            return {"generation": c.text, "finish_reason": c.finish_reason}
        return {"generations": [c.text for c in choices], "finish_reasons": [c.finish_reason for c in choices]}


class GenerateTask(_Generation):
    name = "generate"

    def prepare(self, record: dict) -> str:
        field = self.opts.text_field or "text"
        prompt = _template(self.opts.prompt_template, record) if self.opts.prompt_template else _text(record, field)
        self._check_length(self.engine.text_ids(prompt))  # type: ignore[union-attr]
        return prompt

    def run(self, items: list[str], records: list[dict]) -> list[dict]:
        return [self._fields(c) for c in self.engine.generate(items, self.params)]  # type: ignore[union-attr]


class ChatTask(_Generation):
    name = "chat"

    def prepare(self, record: dict) -> list[dict]:
        field = self.opts.text_field or "messages"
        if self.opts.prompt_template:
            messages = [{"role": "user", "content": _template(self.opts.prompt_template, record)}]
        else:
            if record.get(field) is None:
                raise RowError("missing_field", f"no {field!r} field (fields: {', '.join(map(str, record))}); choose one with --text-field")
            messages = parse_messages(record[field], field)
        if messages[-1]["role"] == "assistant":
            messages = messages[:-1]  # a logged answer: regenerate the last assistant turn
            if not messages:
                raise RowError("invalid_messages", f"{field!r} holds only an assistant turn")
        self._check_length(prompt_ids(self.engine.tok, messages))  # type: ignore[union-attr]
        return messages

    def run(self, items: list[list[dict]], records: list[dict]) -> list[dict]:
        return [self._fields(c) for c in self.engine.chat_generate(items, self.params)]  # type: ignore[union-attr]


class ClassifyTask(Task):
    name = "classify"
    added = ("pred", "probs")

    def prepare(self, record: dict) -> str:
        return _text(record, self.opts.text_field or "text")

    def run(self, items: list[str], records: list[dict]) -> list[dict]:
        info = self.engine.info  # type: ignore[union-attr]
        probs = self.engine.classify(items)  # type: ignore[union-attr]
        return [{"pred": decide(p, info.labels, info.multi_label, info.threshold), "probs": [round(x, 6) for x in p]} for p in probs]


class PerplexityTask(Task):
    name = "perplexity"
    added = ("perplexity", "nll", "tokens")

    def prepare(self, record: dict) -> str:
        text = _text(record, self.opts.text_field or "text")
        if len(self.engine.scoring_ids([text])[0]) < 2:  # type: ignore[union-attr]
            raise RowError("too_short", "perplexity needs at least 2 tokens")
        return text

    def run(self, items: list[str], records: list[dict]) -> list[dict]:
        return [{"perplexity": p.perplexity, "nll": p.nll, "tokens": p.tokens} for p in self.engine.perplexity(items)]  # type: ignore[union-attr]


class FactualityTask(Task):
    """Model-free hallucination scores from nlpforge.evals.factuality (the eval helper's module)."""

    name = "factuality"
    needs_engine = False
    added = ("hallucination_score",)

    def __init__(self, engine: Engine | None, opts: ScoreOptions):
        super().__init__(engine, opts)
        try:
            module = importlib.import_module("nlpforge.evals.factuality")
            self.score_records = module.score_records
        except (ImportError, AttributeError):
            raise StageError("--task factuality needs nlpforge.evals.factuality.score_records (the model-free factuality metrics), which this install lacks") from None

    def prepare(self, record: dict) -> dict:
        fields = [self.opts.source_field, self.opts.output_field] + ([self.opts.reference_field] if self.opts.reference_field else [])
        for f in fields:
            _text(record, f)
        return record

    def run(self, items: list[dict], records: list[dict]) -> list[dict]:
        return self.score_records(items, source_field=self.opts.source_field, output_field=self.opts.output_field, reference_field=self.opts.reference_field)


TASK_CLASSES: dict[str, type[Task]] = {t.name: t for t in (GenerateTask, ChatTask, ClassifyTask, PerplexityTask, FactualityTask)}
