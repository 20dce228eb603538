"""transformers engine: batched ``generate`` with left padding, and teacher-forced NLL."""

from __future__ import annotations

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from nlpforge.console import track
from nlpforge.data.chat import prompt_ids
from nlpforge.engines.base import Completion


class HFEngine:
    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, stop_ids: list[int], batch_size: int = 16):
        self.model = model.eval()
        self.tok = tokenizer
        self.stop_ids = stop_ids
        self.batch_size = batch_size

    @torch.inference_mode()
    def chat(self, conversations: list[list[dict]], max_new_tokens: int) -> list[Completion]:
        prompts = [prompt_ids(self.tok, c) for c in conversations]
        out: list[Completion | None] = [None] * len(prompts)
        # length-sorted batches: less padding, same results
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        pad = self.tok.pad_token_id
        for b in track(range(0, len(order), self.batch_size), -(-len(order) // self.batch_size), "generate"):
            idx = order[b : b + self.batch_size]
            width = max(len(prompts[i]) for i in idx)
            ids = torch.full((len(idx), width), pad)
            attn = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                p = prompts[i]
                ids[row, width - len(p) :] = torch.tensor(p)
                attn[row, width - len(p) :] = 1
            gen = self.model.generate(
                input_ids=ids,
                attention_mask=attn,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=self.stop_ids,
                pad_token_id=pad,
            )
            for row, i in enumerate(idx):
                new = gen[row, width:].tolist()
                stop_at = next((k for k, t in enumerate(new) if t in self.stop_ids), None)
                tokens = new if stop_at is None else new[:stop_at]
                out[i] = Completion(
                    text=self.tok.decode(tokens, skip_special_tokens=True),
                    token_ids=tokens,
                    finish_reason="length" if stop_at is None else "stop",
                )
        return out  # type: ignore[return-value]

    @torch.inference_mode()
    def nll(self, rows: list[dict]) -> tuple[float, int]:
        total, count = 0.0, 0
        for b in range(0, len(rows), self.batch_size):
            batch = rows[b : b + self.batch_size]
            width = max(len(r["input_ids"]) for r in batch)
            ids = torch.full((len(batch), width), self.tok.pad_token_id)
            labels = torch.full((len(batch), width), -100)
            attn = torch.zeros((len(batch), width), dtype=torch.long)
            for i, r in enumerate(batch):
                n = len(r["input_ids"])
                ids[i, :n], labels[i, :n], attn[i, :n] = torch.tensor(r["input_ids"]), torch.tensor(r["labels"]), 1
            logits = self.model(input_ids=ids, attention_mask=attn).logits[:, :-1].float()
            target = labels[:, 1:]
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1), ignore_index=-100, reduction="sum")
            total += loss.item()
            count += int((target != -100).sum())
        return total, count

    # --- added by the eval stage (issue 5): sampled answers and token log-probabilities ---------

    @torch.inference_mode()
    def generate_scored(
        self,
        conversations: list[list[dict]],
        max_new_tokens: int,
        n: int = 1,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int = 0,
    ) -> list[list[dict]]:
        """``n`` continuations per conversation (greedy when temperature is 0), each
        ``{"text", "token_ids", "finish_reason", "logprobs", "entropies"}``: the model's own
        log-probability of every generated token and the entropy (nats) of its next-token
        distribution, both before sampling warpers. Used for SelfCheck samples and token uncertainty."""
        torch.manual_seed(seed)
        prompts = [prompt_ids(self.tok, c) for c in conversations]
        out: list[list[dict]] = [[] for _ in prompts]
        pad = self.tok.pad_token_id
        sample = temperature > 0
        for b in track(range(0, len(prompts), self.batch_size), -(-len(prompts) // self.batch_size), "sample" if sample else "generate"):
            idx = list(range(b, min(b + self.batch_size, len(prompts))))
            width = max(len(prompts[i]) for i in idx)
            ids = torch.full((len(idx), width), pad)
            attn = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                ids[row, width - len(prompts[i]) :] = torch.tensor(prompts[i])
                attn[row, width - len(prompts[i]) :] = 1
            kwargs = {"do_sample": True, "temperature": temperature, "top_p": top_p, "top_k": 0} if sample else {"do_sample": False}
            gen = self.model.generate(
                input_ids=ids, attention_mask=attn, max_new_tokens=max_new_tokens, eos_token_id=self.stop_ids, pad_token_id=pad,
                num_return_sequences=n, output_logits=True, return_dict_in_generate=True, **kwargs,
            )
            logp = torch.stack(gen.logits, dim=1).float().log_softmax(-1)  # (rows*n, steps, vocab)
            entropy = -(logp.exp() * logp).sum(-1)
            for r in range(len(idx) * n):
                new = gen.sequences[r, width:].tolist()
                stop_at = next((k for k, t in enumerate(new) if t in self.stop_ids), None)
                keep = len(new) if stop_at is None else stop_at
                tokens = new[:keep]
                out[idx[r // n]].append({
                    "text": self.tok.decode(tokens, skip_special_tokens=True),
                    "token_ids": tokens,
                    "finish_reason": "length" if stop_at is None else "stop",
                    "logprobs": [float(logp[r, k, t]) for k, t in enumerate(tokens)],
                    "entropies": [float(entropy[r, k]) for k in range(keep)],
                })
        return out
