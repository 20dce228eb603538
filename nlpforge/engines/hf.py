"""transformers engine: length-sorted batches, ``generate`` with left padding, teacher-forced
NLL, per-row perplexity and classification through the model's own head."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from transformers import LogitsProcessor, LogitsProcessorList, PreTrainedModel, PreTrainedTokenizerBase

from nlpforge.console import track
from nlpforge.data.chat import prompt_ids
from nlpforge.engines.base import BundleInfo, Completion, Perplexity, Sampling, classify_ids, load_tokenizer, probs_from_logits, truncate_at_stop

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def left_pad(prompts: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompts as one left-padded batch (ids, attention mask): generation continues every row
    from the last column. The server's dynamically batched engine pads the same way."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad)
    attn = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, p in enumerate(prompts):
        ids[row, width - len(p) :] = torch.tensor(p)
        attn[row, width - len(p) :] = 1
    return ids, attn


class Penalties(LogitsProcessor):
    """Per-row logit_bias and repetition/frequency/presence penalties with vLLM's order and
    meaning (``apply_penalties`` in vLLM), so both engines answer alike. Hand-written because
    transformers' ``RepetitionPenaltyLogitsProcessor`` also counts a row's left padding and it
    has no OpenAI frequency/presence penalties. ``prompts[r]`` are row r's unpadded prompt ids;
    the generated tokens are the columns from ``width`` on."""

    def __init__(self, prompts: list[list[int]], params: list[Sampling], width: int):
        self.prompts, self.width = prompts, width
        self.freq = torch.tensor([[p.frequency_penalty] for p in params])
        self.pres = torch.tensor([[p.presence_penalty] for p in params])
        self.rep = torch.tensor([[p.repetition_penalty] for p in params])
        self.bias_pairs = [p.logit_bias for p in params]
        self.prompt_seen: torch.Tensor | None = None
        self.bias: torch.Tensor | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        rows, vocab = scores.shape
        if self.prompt_seen is None:  # the vocabulary is the logits' width (it may exceed the tokenizer's)
            self.prompt_seen = torch.zeros(rows, vocab, dtype=torch.bool)
            for r, ids in enumerate(self.prompts):
                self.prompt_seen[r, ids] = True
            if any(self.bias_pairs):
                self.bias = torch.zeros(rows, vocab)
                for r, pairs in enumerate(self.bias_pairs):
                    for t, b in pairs:
                        self.bias[r, t] = b
        scores = scores.float() if self.bias is None else scores.float() + self.bias
        gen = input_ids[:, self.width :]
        counts = torch.zeros(rows, vocab).scatter_add_(1, gen, torch.ones(gen.shape))
        seen = counts > 0
        penalized = torch.where(scores > 0, scores / self.rep, scores * self.rep)
        scores = torch.where(seen | self.prompt_seen, penalized, scores)
        return scores - self.freq * counts - self.pres * seen


def penalties(prompts: list[list[int]], params: list[Sampling], width: int) -> dict[str, Any]:
    """``generate`` kwargs applying ``Penalties`` when a row asks for any (nothing otherwise)."""
    if not any(p.penalized for p in params):
        return {}
    return {"logits_processor": LogitsProcessorList([Penalties(prompts, params, width)])}


def sorted_batches(lengths: list[int], batch_size: int) -> Iterator[list[int]]:
    """Row indices in batches of similar length: less padding, same results."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    for b in range(0, len(order), batch_size):
        yield order[b : b + batch_size]


class HFEngine:
    task = "chat"

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, stop_ids: list[int], batch_size: int = 16):
        self.model = model.eval()
        self.tok = tokenizer
        self.stop_ids = stop_ids
        self.batch_size = batch_size
        self.progress = True  # batch scoring draws its own bar (rich allows one live display)
        self.info: BundleInfo | None = None
        self.max_length: int | None = getattr(model.config, "max_position_embeddings", None)

    @classmethod
    def from_bundle(cls, info: BundleInfo, batch_size: int = 32, threads: int | None = None, dtype: str | None = None, tokenizer: Any = None) -> HFEngine:
        from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

        if threads:
            torch.set_num_threads(threads)
        tok = tokenizer or load_tokenizer(info)
        auto = AutoModelForSequenceClassification if info.task == "classification" else AutoModelForCausalLM
        model = auto.from_pretrained(info.path, dtype=DTYPES[dtype or info.dtype], trust_remote_code=info.trust_remote_code)
        engine = cls(model, tok, info.stop_ids, batch_size)
        engine.task, engine.info = info.task, info
        engine.max_length = info.max_length or engine.max_length
        engine.progress = False
        return engine

    def _batches(self, lengths: list[int], name: str) -> Iterator[list[int]]:
        batches = sorted_batches(lengths, self.batch_size)
        return track(batches, -(-len(lengths) // self.batch_size), name) if self.progress else batches

    def chat(self, conversations: list[list[dict]], max_new_tokens: int) -> list[Completion]:
        params = Sampling(max_tokens=max_new_tokens, temperature=0.0)
        return [c[0] for c in self._generate([prompt_ids(self.tok, c) for c in conversations], params)]

    def chat_generate(self, conversations: list[list[dict]], params: Sampling) -> list[list[Completion]]:
        return self._generate([prompt_ids(self.tok, c) for c in conversations], params)

    def generate(self, prompts: list[str], params: Sampling) -> list[list[Completion]]:
        return self._generate([self.text_ids(p) for p in prompts], params)

    def text_ids(self, text: str) -> list[int]:
        return list(self.tok(text)["input_ids"])

    @torch.inference_mode()
    def _generate(self, prompts: list[list[int]], params: Sampling) -> list[list[Completion]]:
        out: list[list[Completion]] = [[] for _ in prompts]
        pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else (self.stop_ids or [0])[0]
        sampling: dict = {"do_sample": False} if params.greedy else {"do_sample": True, "temperature": params.temperature, "top_p": params.top_p, "num_return_sequences": params.n}
        if params.stop:
            sampling.update(stop_strings=list(params.stop), tokenizer=self.tok)
        for idx in self._batches([len(p) for p in prompts], "generate"):
            ids, attn = left_pad([prompts[i] for i in idx], pad)
            width = ids.shape[1]
            if params.seed is not None:
                torch.manual_seed(params.seed)
            per = 1 if params.greedy else params.n
            rows = [prompts[i] for i in idx for _ in range(per)]  # generate repeats each row n times
            gen = self.model.generate(
                input_ids=ids,
                attention_mask=attn,
                max_new_tokens=params.max_tokens,
                eos_token_id=self.stop_ids,
                pad_token_id=pad,
                **sampling,
                **penalties(rows, [params] * len(rows), width),
            )
            for row, i in enumerate(idx):
                for k in range(per):
                    new = gen[row * per + k, width:].tolist()
                    stop_at = next((j for j, t in enumerate(new) if t in self.stop_ids), None)
                    tokens = new if stop_at is None else new[:stop_at]
                    text, stopped = truncate_at_stop(self.tok.decode(tokens, skip_special_tokens=True), params.stop)
                    done = stop_at is not None or stopped
                    out[i].append(Completion(text=text, token_ids=tokens, finish_reason="stop" if done else "length", prompt_tokens=len(prompts[i])))
                if per < params.n:  # greedy with n > 1: every choice is the same answer
                    out[i] *= params.n
        return out

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
            ids, attn = left_pad([prompts[i] for i in idx], pad)
            width = ids.shape[1]
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

    def scoring_ids(self, texts: list[str]) -> list[list[int]]:
        """Ids scored for perplexity: the tokenizer's default encoding, cut to the context length."""
        limit = self.max_length or 10**9
        return [self.text_ids(t)[:limit] for t in texts]

    @torch.inference_mode()
    def perplexity(self, texts: list[str]) -> list[Perplexity]:
        ids_list = self.scoring_ids(texts)
        out: list[Perplexity | None] = [None] * len(texts)
        pad = self.tok.pad_token_id or 0
        for idx in self._batches([len(x) for x in ids_list], "perplexity"):
            width = max(len(ids_list[i]) for i in idx)
            ids = torch.full((len(idx), width), pad)
            labels = torch.full((len(idx), width), -100)
            attn = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                n = len(ids_list[i])
                ids[row, :n], labels[row, :n], attn[row, :n] = torch.tensor(ids_list[i]), torch.tensor(ids_list[i]), 1
            logits = self.model(input_ids=ids, attention_mask=attn).logits[:, :-1].float()
            target = labels[:, 1:]
            loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, ignore_index=-100, reduction="none").sum(-1)
            counts = (target != -100).sum(-1)
            for row, i in enumerate(idx):
                n = int(counts[row])
                out[i] = Perplexity(nll=float(loss[row]) / n if n else 0.0, tokens=n)
        return out  # type: ignore[return-value]

    def classify(self, texts: list[str]) -> list[list[float]]:
        if self.task != "classification" or self.info is None:
            raise ValueError("classify needs a classification bundle (nlpforge.json task: classification)")
        return self.classify_ids(classify_ids(self.tok, texts, self.info))

    @torch.inference_mode()
    def classify_ids(self, enc: list[list[int]]) -> list[list[float]]:
        """Class probabilities of already-tokenized texts (the server counts their tokens)."""
        assert self.info is not None
        out: list[list[float] | None] = [None] * len(enc)
        for idx in self._batches([len(x) for x in enc], "classify"):
            batch = self.tok.pad({"input_ids": [enc[i] for i in idx]}, return_tensors="pt")
            logits = self.model(**batch).logits.float().tolist()
            for row, i in enumerate(idx):
                out[i] = logits[row]
        return probs_from_logits(out, self.info.multi_label)  # type: ignore[arg-type]

    def close(self) -> None:
        pass


