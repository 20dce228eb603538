"""Chat messages: the one validator and role set, and their rendering to token ids through the
tokenizer's own chat template, with loss only on assistant turns, their end-of-turn token included.

The mask comes from the template: with ``{% generation %}`` blocks, transformers returns it
directly; otherwise each assistant turn is located by rendering the conversation up to the
turn with ``add_generation_prompt=True`` and up to the end of the turn, and taking the
tokens in between. Both ways use the exact ids the serving engine renders (the train/serve
prompt contract, docs/architecture.md), so nothing here re-implements a template.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal, get_args

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

from nlpforge.console import track
from nlpforge.errors import ContractError

GENERATION_TAG = re.compile(r"\{%-?\s*generation\s*-?%\}")
TEXT_PARTS = ("text", "input_text")
Role = Literal["system", "user", "assistant", "tool", "developer"]
ROLES: tuple[str, ...] = get_args(Role)  # the one role set: training data, batch files and the server


def text_content(content: Any) -> str:
    """A message's content as the model reads it: a string, or OpenAI content parts whose text
    parts are joined with newlines (as vLLM joins them). ValueError names a part that is not
    text (image, audio): these models read text only."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise ValueError("content must be a string or a list of text parts")
    texts = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in TEXT_PARTS:
            raise ValueError(f"content[{i}] is a {kind!r} part; this model reads text only (parts of type 'text')")
        if not isinstance(part.get("text"), str):
            raise ValueError(f"content[{i}]: a text part needs `text` (a string)")
        texts.append(part["text"])
    return "\n".join(texts)


def check_messages(value: Any, field: str = "messages") -> list[dict[str, str]]:
    """A conversation as ``[{role, content}]`` with string content (text parts joined); a
    ValueError names the message and what is valid. The one validator of chat messages."""
    if not isinstance(value, list) or not value:
        raise ValueError(f"{field} must be a non-empty list of {{role, content}} messages")
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str | list):
            raise ValueError(f"{field}[{i}] must be {{role: one of {list(ROLES)}, content: string}}, got {str(m)[:80]}")
        try:
            out.append({"role": m["role"], "content": text_content(m["content"])})
        except ValueError as exc:
            raise ValueError(f"{field}[{i}].{exc}") from None
    return out


def render(tok: PreTrainedTokenizerBase, messages: list[dict]) -> tuple[list[int], list[int]]:
    """Token ids of a whole conversation and a 0/1 mask of the tokens that carry loss."""
    if GENERATION_TAG.search(tok.chat_template or ""):
        out = tok.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
        return list(out["input_ids"]), list(out["assistant_masks"])
    ids = list(tok.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])
    mask = [0] * len(ids)
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        start = len(tok.apply_chat_template(messages[:i], tokenize=True, add_generation_prompt=True, return_dict=True)["input_ids"])
        end = min(len(tok.apply_chat_template(messages[: i + 1], tokenize=True, return_dict=True)["input_ids"]), len(ids))
        special = set(tok.all_special_ids)
        while end > start and ids[end - 1] not in special and not tok.decode([ids[end - 1]]).strip():
            end -= 1  # the separator a template writes after the end-of-turn token (ChatML's "\n") is not the model's to say
        for j in range(start, end):
            mask[j] = 1
    return ids, mask


def prompt_ids(tok: PreTrainedTokenizerBase, messages: list[dict]) -> list[int]:
    """Ids of the generation prompt for the last assistant turn, as a server renders it."""
    return list(tok.apply_chat_template(messages, tokenize=True, add_generation_prompt=True, return_dict=True)["input_ids"])


def loss_labels(ids: list[int], mask: list[int]) -> list[int]:
    """The labels of a rendered row: its ids where the mask is set, -100 (no loss) elsewhere."""
    return [t if m else -100 for t, m in zip(ids, mask)]


def end_of_turn_id(tok: PreTrainedTokenizerBase, ids: list[int], mask: list[int]) -> int:
    """The last token of an assistant span: the template's end-of-turn token."""
    last = max(i for i, m in enumerate(mask) if m)
    return ids[last]


def format_sample(tok: PreTrainedTokenizerBase, ids: list[int], mask: list[int], markup: bool = True) -> str:
    """A rendered sample with the tokens that carry loss shown in green and [[ ]] brackets."""
    parts, open_ = [], False
    for i, m in zip(ids, mask):
        piece = tok.decode([i])
        if m and not open_:
            parts.append("[bold green][[" if markup else "[[")
            open_ = True
        if not m and open_:
            parts.append("]][/bold green]" if markup else "]]")
            open_ = False
        parts.append(piece.replace("[", "\\[") if markup else piece)
    if open_:
        parts.append("]][/bold green]" if markup else "]]")
    return "".join(parts)


def _rendered(tok: PreTrainedTokenizerBase, items: list[dict], field: str, num_proc: int, desc: str) -> Iterator[tuple[dict, list[int], list[bool]]]:
    """(row, ids, loss mask) for each row, in order: here, or with ``num_proc`` processes through
    ``datasets.map`` (the rows travel as JSON strings, so conversations with uneven keys need no
    common Arrow schema, through an Arrow file in a temporary folder, so the split is never
    held in memory)."""
    if num_proc <= 1 or len(items) < 2 * num_proc:
        for row in track(items, len(items), desc):
            yield row, *render(tok, row[field])
        return
    from datasets import Dataset, disable_progress_bars

    disable_progress_bars()  # the stage shows one bar, below

    def batch(rows: dict[str, list]) -> dict[str, list]:
        out: dict[str, list] = {"ids": [], "mask": []}
        for line in rows["row"]:
            ids, mask = render(tok, json.loads(line))
            out["ids"].append(ids)
            out["mask"].append(mask)
        return out

    def lines() -> Iterator[dict[str, str]]:
        for r in items:
            yield {"row": json.dumps(r[field])}

    with tempfile.TemporaryDirectory(prefix="nlpforge-prepare-") as cache:  # on disk, not in RAM; a fresh cache, never a stale one
        ds = Dataset.from_generator(lines, cache_dir=cache)
        done = ds.map(batch, batched=True, batch_size=256, num_proc=num_proc, remove_columns=["row"])
        rows = iter(track(items, len(items), desc))
        for part in done.iter(batch_size=1000):
            for ids, mask in zip(part["ids"], part["mask"]):
                yield next(rows), ids, mask


def write_chat_rows(tok: PreTrainedTokenizerBase, items: list[dict], field: str, max_length: int, f: Any, rej_f: Any, eot_ids: set[int], desc: str,
                    num_proc: int = 1) -> dict[str, int]:
    """Render conversations to ids and loss labels (one JSON line each); overlong ones are rejected."""
    n_tok = n_loss = kept = rejects = 0
    for row, ids, mask in _rendered(tok, items, field, num_proc, desc):
        messages = row[field]
        if len(ids) > max_length:
            # truncating would cut the end-of-turn token out of the loss: reject instead
            rejects += 1
            rej_f.write(json.dumps({"source": row.get("source"), "reason": "too_long_tokens", "detail": f"{len(ids)} tokens > model.max_length={max_length}"}) + "\n")
            continue
        if not any(mask):
            raise ContractError(f"{row.get('source')}: the chat template marks no assistant tokens for loss")
        eot_ids.add(end_of_turn_id(tok, ids, mask))
        f.write(json.dumps({"source": row.get("source"), "messages": messages, "input_ids": ids, "labels": loss_labels(ids, mask)}) + "\n")
        kept += 1
        n_tok += len(ids)
        n_loss += sum(mask)
    return {"rows": kept, "tokens": n_tok, "loss_tokens": n_loss, "rejected": rejects}


def chat_meta(tok: PreTrainedTokenizerBase, eot_ids: set[int]) -> dict[str, Any]:
    """What eval and export need to stop where training stopped (one end-of-turn token)."""
    if len(eot_ids) != 1:
        names = [tok.convert_ids_to_tokens(i) for i in sorted(eot_ids)]
        raise ContractError(f"assistant turns end in different tokens {names}; the template must close every turn with one end-of-turn token")
    eot = next(iter(eot_ids))
    return {
        "end_of_turn_token": tok.convert_ids_to_tokens(eot),
        "end_of_turn_id": eot,
        "eos_token": tok.eos_token,
        "eos_token_id": tok.eos_token_id,
        "pad_token": tok.pad_token,
        "pad_token_id": tok.pad_token_id,
        "chat_template": tok.chat_template,
    }
