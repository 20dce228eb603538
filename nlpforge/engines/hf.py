"""transformers engine for offline work (eval, batch scoring): length-sorted batches through the
one decoding loop (``decode.py``), teacher-forced NLL, per-row perplexity and classification
through the model's own head."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from nlpforge.console import track
from nlpforge.data.chat import prompt_ids
from nlpforge.engines.base import Completion, Engine, Perplexity, Sampling, classify_ids, probs_from_logits
from nlpforge.engines.bundle import BundleInfo, load_tokenizer
from nlpforge.engines.decode import Row, decode
from nlpforge.models import torch_dtype


def sorted_batches(lengths: list[int], batch_size: int) -> Iterator[list[int]]:
    """Row indices in batches of similar length: less padding, same results."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    for b in range(0, len(order), batch_size):
        yield order[b : b + batch_size]


def pad_id(tok: Any, info: BundleInfo) -> int:
    """The pad id batches are padded with (never attended to); the first stop id for tokenizers without one."""
    return tok.pad_token_id if tok.pad_token_id is not None else (info.stop_ids or [0])[0]


class HFEngine(Engine):
    def __init__(self, model: Any, tok: Any, info: BundleInfo, batch_size: int = 32):
        self.model = model.eval()
        self.tok = tok
        self.info = info
        self.batch_size = batch_size
        self.progress = True  # batch scoring draws its own bar (rich allows one live display)
        self.max_length: int | None = info.max_length or getattr(model.config, "max_position_embeddings", None)

    @classmethod
    def from_model(cls, model: Any, tok: Any, info: BundleInfo, batch_size: int = 32) -> HFEngine:
        """A model already in memory (eval's base and tuned models) behind the engine interface."""
        return cls(model, tok, info, batch_size)

    @classmethod
    def from_bundle(cls, info: BundleInfo, batch_size: int = 32, threads: int | None = None, dtype: str | None = None, tokenizer: Any = None) -> HFEngine:
        from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

        if threads:
            torch.set_num_threads(threads)
        tok = tokenizer or load_tokenizer(info)
        auto = AutoModelForSequenceClassification if info.task == "classification" else AutoModelForCausalLM
        model = auto.from_pretrained(info.path, dtype=torch_dtype(dtype or info.dtype), trust_remote_code=info.trust_remote_code)
        engine = cls(model, tok, info, batch_size)
        engine.progress = False
        return engine

    def _batches(self, lengths: list[int], name: str) -> Iterator[list[int]]:
        batches = sorted_batches(lengths, self.batch_size)
        return track(batches, -(-len(lengths) // self.batch_size), name) if self.progress else batches

    def chat_generate(self, conversations: list[list[dict]], params: Sampling) -> list[list[Completion]]:
        return self.generate_ids([prompt_ids(self.tok, c) for c in conversations], params)

    def generate(self, prompts: list[str], params: Sampling) -> list[list[Completion]]:
        return self.generate_ids([self.text_ids(p) for p in prompts], params)

    def generate_ids(self, prompts: list[list[int]], params: Sampling) -> list[list[Completion]]:
        """``params.n`` completions per prompt; greedy with n > 1 computes one and repeats it."""
        out: list[list[Completion]] = [[] for _ in prompts]
        per = 1 if params.greedy else params.n
        stop_ids = frozenset(self.info.stop_ids)
        for idx in self._batches([len(p) for p in prompts], "generate"):
            rows = [Row(prompts[i], params, stop_ids, index=k) for i in idx for k in range(per)]
            decode(self.model, self.tok, rows, pad_id(self.tok, self.info))
            for j, i in enumerate(idx):
                out[i] = [rows[j * per + k].out for k in range(per)]
                if per < params.n:  # greedy: every choice is the same answer
                    out[i] = [Completion(**{**out[i][0].__dict__, "index": k}) for k in range(params.n)]
        return out

    @torch.inference_mode()
    def nll(self, rows: list[dict]) -> tuple[float, int]:
        total, count = 0.0, 0
        for b in range(0, len(rows), self.batch_size):
            ids, labels, attn = self._right_padded([r["input_ids"] for r in rows[b : b + self.batch_size]], [r["labels"] for r in rows[b : b + self.batch_size]])
            logits = self.model(input_ids=ids, attention_mask=attn).logits[:, :-1].float()
            target = labels[:, 1:]
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1), ignore_index=-100, reduction="sum")
            total += loss.item()
            count += int((target != -100).sum())
        return total, count

    def _right_padded(self, ids_list: list[list[int]], labels_list: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        width = max(len(x) for x in ids_list)
        ids = torch.full((len(ids_list), width), pad_id(self.tok, self.info))
        labels = torch.full((len(ids_list), width), -100)
        attn = torch.zeros((len(ids_list), width), dtype=torch.long)
        for i, (x, y) in enumerate(zip(ids_list, labels_list)):
            ids[i, : len(x)], labels[i, : len(x)], attn[i, : len(x)] = torch.tensor(x), torch.tensor(y), 1
        return ids, labels, attn

    @torch.inference_mode()
    def perplexity(self, texts: list[str]) -> list[Perplexity]:
        ids_list = self.scoring_ids(texts)
        out: list[Perplexity] = [Perplexity(0.0, 0)] * len(texts)
        for idx in self._batches([len(x) for x in ids_list], "perplexity"):
            batch = [ids_list[i] for i in idx]
            ids, labels, attn = self._right_padded(batch, batch)
            logits = self.model(input_ids=ids, attention_mask=attn).logits[:, :-1].float()
            target = labels[:, 1:]
            loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, ignore_index=-100, reduction="none").sum(-1)
            counts = (target != -100).sum(-1)
            for row, i in enumerate(idx):
                n = int(counts[row])
                out[i] = Perplexity(nll=float(loss[row]) / n if n else 0.0, tokens=n)
        return out

    def classify(self, texts: list[str]) -> list[list[float]]:
        self._need_classifier()
        return self.classify_ids(classify_ids(self.tok, texts, self.info.max_length))

    @torch.inference_mode()
    def classify_ids(self, enc: list[list[int]]) -> list[list[float]]:
        """Class probabilities of already-tokenized texts (the server counts their tokens)."""
        logits: list[list[float]] = [[]] * len(enc)
        for idx in self._batches([len(x) for x in enc], "classify"):
            batch = self.tok.pad({"input_ids": [enc[i] for i in idx]}, return_tensors="pt")
            for row, values in zip(idx, self.model(**batch).logits.float().tolist()):
                logits[row] = values
        return probs_from_logits(logits, self.info.multi_label)

    def close(self) -> None:
        pass
