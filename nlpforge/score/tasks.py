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

from nlpforge.data.chat import check_messages, prompt_ids
from nlpforge.engines import Engine, Sampling
from nlpforge.engines.base import decide
from nlpforge.errors import StageError

TASKS = ("generate", "chat", "classify", "perplexity", "factuality")


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
        if not stripped.startswith("["):
            return [{"role": "user", "content": value}]
        try:
            value = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise RowError("invalid_messages", f"{field!r} looks like JSON but does not parse: {exc.msg}") from None
    try:
        return check_messages(value, field)
    except ValueError as exc:
        raise RowError("invalid_messages", str(exc)) from None


class Task:
    name = ""
    needs_engine = True
    added: tuple[str, ...] = ()

    def __init__(self, engine: Engine | None, opts: ScoreOptions):
        self._engine = engine
        self.opts = opts

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise StageError(f"--task {self.name} needs --model BUNDLE")
        return self._engine

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
        return self.opts.sampling or self.engine.info.defaults

    def check_length(self, ids: list[int], params: Sampling) -> list[int]:
        limit = self.engine.max_length
        if limit and len(ids) + params.max_tokens > limit:
            raise RowError("too_long", f"prompt of {len(ids)} tokens + max_tokens {params.max_tokens} exceeds the model's context of {limit}")
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
        self.check_length(self.engine.text_ids(prompt), self.params)
        return prompt

    def run(self, items: list[str], records: list[dict]) -> list[dict]:
        return [self._fields(c) for c in self.engine.generate(items, self.params)]


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
        self.check_length(prompt_ids(self.engine.tok, messages), self.params)
        return messages

    def run(self, items: list[list[dict]], records: list[dict]) -> list[dict]:
        return [self._fields(c) for c in self.engine.chat_generate(items, self.params)]


class ClassifyTask(Task):
    name = "classify"
    added = ("pred", "probs")

    def prepare(self, record: dict) -> str:
        return _text(record, self.opts.text_field or "text")

    def run(self, items: list[str], records: list[dict]) -> list[dict]:
        info = self.engine.info
        return [{"pred": decide(p, info.labels, info.multi_label, info.threshold), "probs": [round(x, 6) for x in p]} for p in self.engine.classify(items)]


class PerplexityTask(Task):
    name = "perplexity"
    added = ("perplexity", "nll", "tokens")

    def prepare(self, record: dict) -> str:
        text = _text(record, self.opts.text_field or "text")
        if len(self.engine.scoring_ids([text])[0]) < 2:
            raise RowError("too_short", "perplexity needs at least 2 tokens")
        return text

    def run(self, items: list[str], records: list[dict]) -> list[dict]:
        return [{"perplexity": p.perplexity, "nll": p.nll, "tokens": p.tokens} for p in self.engine.perplexity(items)]


class FactualityTask(Task):
    """Model-free hallucination scores from nlpforge.evals.factuality."""

    name = "factuality"
    needs_engine = False
    added = ("hallucination_score",)

    def __init__(self, engine: Engine | None, opts: ScoreOptions):
        super().__init__(engine, opts)
        # imported here: spaCy and the scorer load only for this task
        self.score_records = importlib.import_module("nlpforge.evals.factuality").score_records

    def prepare(self, record: dict) -> dict:
        fields = [self.opts.source_field, self.opts.output_field] + ([self.opts.reference_field] if self.opts.reference_field else [])
        for f in fields:
            _text(record, f)
        return record

    def run(self, items: list[dict], records: list[dict]) -> list[dict]:
        return self.score_records(items, source_field=self.opts.source_field, output_field=self.opts.output_field, reference_field=self.opts.reference_field)


TASK_CLASSES: dict[str, type[Task]] = {t.name: t for t in (GenerateTask, ChatTask, ClassifyTask, PerplexityTask, FactualityTask)}
