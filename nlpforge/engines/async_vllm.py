"""vLLM's ``AsyncLLM`` in this process (its engine core runs in a child process), behind the
server's engine interface. Engine arguments and sampling params come from the same builders
the offline engine uses (``engines/vllm.py``)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

from nlpforge.engines.base import GenOut, Sampling, classify_ids, probs_from_logits
from nlpforge.engines.bundle import BundleInfo, load_tokenizer
from nlpforge.engines.vllm import completion, engine_args, sampling_params, token_logprob, vllm_env


class AsyncVLLMEngine:
    kind = "vllm"

    def __init__(self, info: BundleInfo, dtype: str | None = None, max_lora_rank: int | None = None, extra: dict[str, Any] | None = None):
        vllm_env()
        self.info = info
        self.tok = load_tokenizer(info)
        self.args = engine_args(info, dtype, max_lora_rank, long_running=True, **(extra or {}))
        self.llm: Any = None
        self._lora_ids = {name: i + 1 for i, name in enumerate(info.adapters)}
        self._running = 0

    async def start(self) -> None:
        from vllm import AsyncEngineArgs
        from vllm.usage.usage_lib import UsageContext
        from vllm.v1.engine.async_llm import AsyncLLM

        # the scheduler defaults (batch sizes) vLLM's own server uses. Built in a worker thread: loading
        # takes tens of seconds, and a server swapping versions (--watch-registry) keeps streaming from
        # the old engine meanwhile. Outside a running loop AsyncLLM starts its output handler lazily,
        # on the first request, in the server's loop.
        self.llm = await asyncio.to_thread(AsyncLLM.from_engine_args, AsyncEngineArgs(**self.args), usage_context=UsageContext.OPENAI_API_SERVER)

    async def generate(self, prompt: list[int], params: Sampling, request_id: str, adapter: str | None = None, stream: bool = False) -> AsyncIterator[GenOut]:
        from vllm.inputs.engine import tokens_input
        from vllm.lora.request import LoRARequest
        from vllm.sampling_params import RequestOutputKind

        lora = LoRARequest(adapter, self._lora_ids[adapter], str(self.info.adapters[adapter])) if adapter else None
        kind = RequestOutputKind.CUMULATIVE if stream else RequestOutputKind.FINAL_ONLY
        sp = sampling_params(params, self.info.stop_ids, output_kind=kind)
        want_lp = params.logprobs is not None
        self._running += 1
        try:
            # closing this generator (client gone) makes vLLM abort the request in its engine;
            # an already-rendered engine input: vLLM skips its own (thread-offloaded) prompt processing
            async for out in self.llm.generate(tokens_input(prompt), sp, request_id, lora_request=lora):
                choices = [completion(o, len(prompt), want_lp) for o in sorted(out.outputs, key=lambda o: o.index)]
                plp = None
                if params.prompt_logprobs is not None and out.prompt_logprobs is not None:
                    plp = [token_logprob(e, t) for e, t in zip(out.prompt_logprobs, prompt)]
                yield GenOut(choices, len(prompt), plp, out.finished)
        finally:
            self._running -= 1

    async def classify(self, texts: list[str]) -> tuple[list[list[float]], int]:
        from vllm import PoolingParams
        from vllm.inputs.engine import tokens_input

        ids = classify_ids(self.tok, texts, self.info.max_length)

        async def one(x: list[int]) -> list[float]:
            last: Any = None
            # raw logits (no activation): probabilities come from the same softmax/sigmoid as the hf engine
            async for out in self.llm.encode(tokens_input(x), PoolingParams(task="classify", use_activation=False), f"cls-{uuid.uuid4().hex}"):
                last = out
            return [float(v) for v in last.outputs.data]

        self._running += 1
        try:
            logits = await asyncio.gather(*(one(x) for x in ids))
        finally:
            self._running -= 1
        return probs_from_logits(logits, self.info.multi_label), sum(len(x) for x in ids)

    def pending(self) -> int:
        return self._running

    async def shutdown(self) -> None:
        if self.llm is not None:
            self.llm.shutdown()
