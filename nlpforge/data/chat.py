"""Prepare: chat messages to token ids through the tokenizer's own chat template, with loss
only on assistant turns, their end-of-turn token included.

The mask comes from the template: with ``{% generation %}`` blocks, transformers returns it
directly; otherwise each assistant turn is located by rendering the conversation up to the
turn with ``add_generation_prompt=True`` and up to the end of the turn, and taking the
tokens in between. Both ways use the exact ids the serving engine renders (DESIGN.md,
contract 1), so nothing here re-implements a template.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from transformers import AutoTokenizer, PreTrainedTokenizerBase

from nlpforge.console import track
from nlpforge.errors import ContractError, RecipeError, StageError
from nlpforge.models import resolve_model_path
from nlpforge.recipe import Recipe
from nlpforge.runs import atomic_file, atomic_write_json

GENERATION_TAG = re.compile(r"\{%-?\s*generation\s*-?%\}")
TEXT_PARTS = ("text", "input_text")


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


def load_tokenizer(recipe: Recipe, path: str | None = None, require_template: bool = True) -> PreTrainedTokenizerBase:
    source = path or resolve_model_path(recipe.model.path)
    try:
        tok = AutoTokenizer.from_pretrained(source, trust_remote_code=recipe.model.trust_remote_code)
    except (OSError, ValueError) as exc:
        raise StageError(f"model.path: cannot load a tokenizer from {source!r}: {exc}") from None
    template = recipe.model.chat_template
    if template:
        tpath = Path(template)
        if tpath.suffix == ".jinja":
            if not tpath.is_file():
                raise RecipeError(f"model.chat_template: template file {template} not found (paths are relative to {Path.cwd()})")
            tok.chat_template = tpath.read_text(encoding="utf-8")
        else:
            tok.chat_template = template
    if require_template and not tok.chat_template:
        raise ContractError(
            f"{source}: the tokenizer has no chat template; set model.chat_template to a Jinja template "
            "(inline or a .jinja file) so training and serving render conversations the same way"
        )
    if tok.pad_token_id is None or tok.pad_token_id == tok.eos_token_id:
        # pad == eos hides EOS from the loss in most collators and the model never stops.
        # Our collator takes labels from the template mask, so EOS is trained either way,
        # but say so rather than pad silently with EOS.
        raise ContractError(
            f"{source}: pad token {tok.pad_token!r} is missing or equals eos {tok.eos_token!r}; "
            "give the tokenizer a distinct pad token (tokenizer.add_special_tokens({'pad_token': '<|pad|>'}))"
        )
    return tok


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
        end = len(tok.apply_chat_template(messages[: i + 1], tokenize=True, return_dict=True)["input_ids"])
        for j in range(start, min(end, len(ids))):
            mask[j] = 1
    return ids, mask


def prompt_ids(tok: PreTrainedTokenizerBase, messages: list[dict]) -> list[int]:
    """Ids of the generation prompt for the last assistant turn, as a server renders it."""
    return list(tok.apply_chat_template(messages, tokenize=True, add_generation_prompt=True, return_dict=True)["input_ids"])


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


def write_chat_rows(tok: PreTrainedTokenizerBase, items: list[dict], field: str, max_length: int, f: Any, rej_f: Any, eot_ids: set[int], desc: str) -> dict[str, int]:
    """Render conversations to ids and loss labels (one JSON line each); overlong ones are rejected."""
    n_tok = n_loss = kept = rejects = 0
    for row in track(items, len(items), desc):
        messages = row[field]
        ids, mask = render(tok, messages)
        if len(ids) > max_length:
            # truncating would cut the end-of-turn token out of the loss: reject instead
            rejects += 1
            rej_f.write(json.dumps({"source": row.get("source"), "reason": "too_long_tokens", "detail": f"{len(ids)} tokens > model.max_length={max_length}"}) + "\n")
            continue
        if not any(mask):
            raise ContractError(f"{row.get('source')}: the chat template marks no assistant tokens for loss")
        eot_ids.add(end_of_turn_id(tok, ids, mask))
        labels = [t if m else -100 for t, m in zip(ids, mask)]
        f.write(json.dumps({"source": row.get("source"), "messages": messages, "input_ids": ids, "labels": labels}) + "\n")
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


def run_prepare(recipe: Recipe, corpus: Path, out_dir: Path) -> dict[str, Any]:
    """Chat SFT (formats messages, alpaca, sharegpt: clean already made them messages)."""
    from nlpforge.data.splits import read_corpus, split_and_weight

    tok = load_tokenizer(recipe)
    field = recipe.data.messages_field
    splits = split_and_weight(recipe, read_corpus(corpus))
    eot_ids: set[int] = set()
    stats: dict[str, Any] = {"tokens": {}, "loss_tokens": {}, "rows": {}}
    rejects = 0
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_file(out_dir / "rejects.jsonl") as rej_f:
        for split, items in splits.items():
            with atomic_file(out_dir / f"{split}.jsonl") as f:
                st = write_chat_rows(tok, items, field, recipe.model.max_length, f, rej_f, eot_ids, f"prepare {split}")
            rejects += st["rejected"]
            stats["rows"][split], stats["tokens"][split], stats["loss_tokens"][split] = st["rows"], st["tokens"], st["loss_tokens"]
    meta = {"task": "sft", "format": recipe.data.format, **stats, "rejected_too_long": rejects, **chat_meta(tok, eot_ids)}
    atomic_write_json(out_dir / "meta.json", meta)
    return {"train_rows": stats["rows"]["train"], "eval_rows": stats["rows"]["eval"], "end_of_turn": meta["end_of_turn_token"]}
