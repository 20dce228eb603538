"""The one transformers decoding loop, shared by offline generation (eval, batch scoring) and
the server's batching thread.

``decode`` runs a batch of rows through ``model.generate`` (which owns the KV cache, position
ids under left padding and every architecture's quirks) with two hooks that see every step:

- :class:`RowSampler` (a logits processor) applies each row's own ``logit_bias`` and penalties
  with vLLM's order and meaning, then picks the row's token itself: greedy, or temperature and
  top-p sampling from the row's own seeded generator. It hands ``generate`` a one-hot score
  so that ``generate``'s greedy step takes exactly that token. Rows with different sampling
  parameters, seeds and adapters can therefore share a batch, and the chosen token's log-prob,
  top-k and entropy come from the same logits. A row whose logits are not finite fails alone
  (``finish_reason="error"``); the rest of the batch goes on.
- :class:`RowStopper` (a stopping criterion) ends each row on a stop token, a stop string,
  its own ``max_tokens``, an abort or an error, and reports progress for streaming.

Hand-written because transformers has no per-row sampling parameters or seeds, its
``RepetitionPenaltyLogitsProcessor`` counts a row's left padding, and nothing in it isolates
one bad row of a batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

from nlpforge.engines.base import Completion, Sampling, TokenLogprob


@dataclass
class Row:
    """One sequence to generate (a request with ``n`` choices is ``n`` rows)."""

    prompt: list[int]
    params: Sampling
    stop_ids: frozenset[int]
    index: int = 0  # the choice number within its request
    adapter: str | None = None
    stream: bool = False  # the text is kept up to date at every step (for streaming)
    aborted: Callable[[], bool] = lambda: False
    out: Completion = field(init=False)
    done: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        lp = [] if self.params.logprobs is not None else None
        self.out = Completion(text="", token_ids=[], finish_reason=None, prompt_tokens=len(self.prompt), index=self.index, logprobs=lp,
                              entropies=[] if lp is not None else None)

    @property
    def needs_text(self) -> bool:
        return bool(self.params.stop) or self.stream


def left_pad(prompts: Sequence[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompts as one left-padded batch (ids, attention mask): generation continues every row
    from the last column."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad)
    attn = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, p in enumerate(prompts):
        ids[row, width - len(p) :] = torch.tensor(p)
        attn[row, width - len(p) :] = 1
    return ids, attn


def row_generator(seed: int | None, index: int) -> torch.Generator:
    """Choice ``index`` of a request draws from its own stream: the same seed gives the same
    choices whatever else shares the batch."""
    g = torch.Generator()
    if seed is None:
        g.seed()
    else:
        g.manual_seed((seed * 1_000_003 + index) % 2**64)
    return g


class RowSampler(LogitsProcessor):
    """Per-row bias and penalties, then the row's own choice (see the module docstring)."""

    def __init__(self, rows: list[Row], width: int):
        self.rows, self.width = rows, width
        params = [r.params for r in rows]
        self.penalized = any(p.penalized for p in params)
        self.freq = torch.tensor([[p.frequency_penalty] for p in params])
        self.pres = torch.tensor([[p.presence_penalty] for p in params])
        self.rep = torch.tensor([[p.repetition_penalty] for p in params])
        self.prompt_seen: torch.Tensor | None = None
        self.bias: torch.Tensor | None = None
        self.generators = [None if r.params.greedy else row_generator(r.params.seed, r.index) for r in rows]
        self.want_logprobs = any(r.params.logprobs is not None for r in rows)

    def _penalize(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        rows, vocab = scores.shape
        if self.prompt_seen is None:  # the vocabulary is the logits' width (it may exceed the tokenizer's)
            self.prompt_seen = torch.zeros(rows, vocab, dtype=torch.bool)
            for r, row in enumerate(self.rows):
                self.prompt_seen[r, row.prompt] = True
            if any(row.params.logit_bias for row in self.rows):
                self.bias = torch.zeros(rows, vocab)
                for r, row in enumerate(self.rows):
                    for t, b in row.params.logit_bias:
                        if t < vocab:
                            self.bias[r, t] = b
        if self.bias is not None:
            scores = scores + self.bias
        gen = input_ids[:, self.width :]
        counts = torch.zeros(rows, vocab).scatter_add_(1, gen, torch.ones(gen.shape))
        seen = counts > 0
        penalized = torch.where(scores > 0, scores / self.rep, scores * self.rep)
        scores = torch.where(seen | self.prompt_seen, penalized, scores)
        return scores - self.freq * counts - self.pres * seen

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        raw = scores.float()
        logits = self._penalize(input_ids, raw) if self.penalized else raw
        bad = (torch.isnan(logits) | torch.isposinf(logits)).any(-1) | ~torch.isfinite(logits).any(-1)
        chosen = logits.argmax(-1)  # greedy rows: one batched argmax
        logp_raw = raw.log_softmax(-1) if self.want_logprobs else None
        for r, row in enumerate(self.rows):
            if row.done:
                continue
            if bad[r]:
                row.out.error = "the model's next-token scores are not finite for this request (NaN or no finite score)"
                chosen[r] = 0
                continue
            g = self.generators[r]
            if g is not None:
                p = row.params
                probs = torch.softmax(logits[r] / p.temperature, -1)
                if p.top_p < 1.0:
                    probs = _top_p(probs, p.top_p)
                if not bool(torch.isfinite(probs).all()) or float(probs.sum()) <= 0:
                    row.out.error = f"sampling at temperature {p.temperature} gives no valid distribution for this request"
                    chosen[r] = 0
                    continue
                chosen[r] = int(torch.multinomial(probs, 1, generator=g))
            if logp_raw is not None and row.out.logprobs is not None and row.out.entropies is not None:
                lp = logp_raw[r]
                row.out.logprobs.append(top_logprob(lp, int(chosen[r]), row.params.logprobs or 0))
                row.out.entropies.append(float(-(lp.exp() * lp).nan_to_num().sum()))
        out = torch.full_like(raw, float("-inf"))
        out[torch.arange(len(self.rows)), chosen] = 0.0
        return out  # type: ignore[return-value]


def _top_p(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose mass reaches ``top_p`` (at least one)."""
    sorted_p, idx = probs.sort(descending=True)
    keep = sorted_p.cumsum(-1) - sorted_p < top_p
    keep[0] = True
    out = torch.zeros_like(probs)
    out[idx[keep]] = sorted_p[keep]
    return out / out.sum()


def top_logprob(logp: torch.Tensor, token_id: int, k: int) -> TokenLogprob:
    """The chosen token's log-prob, then the ``k`` most likely tokens (the chosen one not repeated)."""
    top: list[tuple[int, float]] = []
    if k > 0:
        vals, idx = logp.topk(k)
        top = [(int(i), float(v)) for i, v in zip(idx, vals)]
    chosen = (token_id, float(logp[token_id]))
    return TokenLogprob(token_id, chosen[1], [chosen, *[t for t in top if t[0] != token_id]])


class RowStopper(StoppingCriteria):
    """Ends each row on its stop token, stop string, ``max_tokens``, abort or error; calls
    ``on_step(rows)`` after every step with the rows that changed (streaming)."""

    def __init__(self, rows: list[Row], width: int, tok: Any, on_step: Callable[[list[Row]], None] | None):
        self.rows, self.width, self.tok, self.on_step = rows, width, tok, on_step

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kw: Any) -> torch.BoolTensor:
        changed = []
        for r, row in enumerate(self.rows):
            if row.done:
                continue
            out, p = row.out, row.params
            last = int(input_ids[r, -1])
            if out.error is not None:
                out.finish_reason, row.done = "error", True
                changed.append(row)
                continue
            out.token_ids.append(last)
            if last in row.stop_ids and not p.ignore_eos:
                out.finish_reason, row.done = "stop", True  # the stop token counts as generated (as in vLLM); its text does not
            else:
                if row.needs_text:  # text at every step only to find stop strings or to stream it
                    out.text = self.tok.decode(out.token_ids, skip_special_tokens=True)
                    hit = min((i for i in (out.text.find(s) for s in p.stop) if i >= 0), default=-1)
                    if hit >= 0:
                        out.text, out.finish_reason, row.done = out.text[:hit], "stop", True
                if not row.done and len(out.token_ids) >= p.max_tokens:
                    out.finish_reason, row.done = "length", True
                elif not row.done and row.aborted():
                    out.finish_reason, row.done = "abort", True
            changed.append(row)
        if self.on_step is not None and changed:
            self.on_step(changed)
        return torch.tensor([row.done for row in self.rows], dtype=torch.bool)  # type: ignore[return-value]


@torch.inference_mode()
def decode(model: Any, tok: Any, rows: list[Row], pad_id: int, on_step: Callable[[list[Row]], None] | None = None, adapter_names: bool = False) -> list[Row]:
    """Generate every row to its end; each row's ``out`` holds its completion. ``adapter_names``:
    the model is a PEFT multi-adapter model and rows pick their adapter (None = the base)."""
    ids, attn = left_pad([r.prompt for r in rows], pad_id)
    width = ids.shape[1]
    extra: dict[str, Any] = {"adapter_names": [r.adapter or "__base__" for r in rows]} if adapter_names else {}
    model.generate(
        input_ids=ids, attention_mask=attn, max_new_tokens=max(r.params.max_tokens for r in rows), do_sample=False,
        temperature=None, top_p=None, top_k=None, repetition_penalty=None, eos_token_id=None, pad_token_id=pad_id,
        logits_processor=LogitsProcessorList([RowSampler(rows, width)]), stopping_criteria=StoppingCriteriaList([RowStopper(rows, width, tok, on_step)]),
        **extra,
    )
    for row in rows:
        out = row.out
        out.finish_reason = out.finish_reason or "length"
        if not row.needs_text:  # not kept up to date while generating: decoded once here
            ends_on_stop = out.finish_reason == "stop" and out.token_ids and out.token_ids[-1] in row.stop_ids
            out.text = tok.decode(out.token_ids[:-1] if ends_on_stop else out.token_ids, skip_special_tokens=True)
        elif out.finish_reason == "stop" and out.token_ids and out.token_ids[-1] in row.stop_ids:
            out.text = tok.decode(out.token_ids[:-1], skip_special_tokens=True)
    return rows


@torch.inference_mode()
def prompt_logprobs(model: Any, prompt: list[int], k: int, extra: dict[str, Any] | None = None) -> list[TokenLogprob | None]:
    """Log-prob of every prompt token given the ones before it (the first has none): echo."""
    logps = model(input_ids=torch.tensor([prompt]), **(extra or {})).logits[0, :-1].float().log_softmax(-1)
    return [None] + [top_logprob(logps[i], t, k) for i, t in enumerate(prompt[1:])]
