"""Build the small local base model used by the quickstart and the tests.

No model hub is reachable here, so the base model is made in code: a byte-level BPE
tokenizer trained on our own corpus, a ChatML-style chat template whose assistant turns
are wrapped in ``{% generation %}`` (so the loss mask comes from the template itself), and
distinct pad (``<|pad|>``), eos (``<|endoftext|>``) and end-of-turn (``<|im_end|>``) tokens.
The Llama-architecture model is then pretrained briefly on plain product text and
question/answer lines (not in chat format), so it knows the facts but not the chat format:
fine-tuning has a visible effect.

Everything is saved with ``save_pretrained`` (safetensors) and loads through the ordinary
``AutoTokenizer``/``AutoModelForCausalLM`` code, as a hub model would.

    python scripts/build_tiny_model.py --out models/tiny-support-llama
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_corpus  # noqa: E402

PAD, EOS, IM_START, IM_END = "<|pad|>", "<|endoftext|>", "<|im_start|>", "<|im_end|>"

# ChatML. The assistant's content and its end-of-turn token sit inside {% generation %},
# so `return_assistant_tokens_mask` marks exactly the tokens that must carry loss.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['role'] == 'assistant' -%}"
    "{%- generation -%}{{- message['content'] + '<|im_end|>' -}}{%- endgeneration -%}"
    "{{- '\\n' -}}"
    "{%- else -%}"
    "{{- message['content'] + '<|im_end|>' + '\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)


def pretraining_texts(seed: int, n_pairs: int = 3000) -> list[str]:
    """Product sheet plus plain Q/A lines (a different seed from the shipped corpus)."""
    rng = random.Random(seed + 1000)
    texts = list(make_corpus.product_sheet())
    for _ in range(n_pairs):
        product = rng.choice(make_corpus.PRODUCTS)
        kind = rng.choice(list(make_corpus.QUESTIONS))
        order = f"NW-{rng.randint(100000, 999999)}"
        q = rng.choice(make_corpus.QUESTIONS[kind]).format(p=product[0], o=order)
        texts.append(f"Question: {q}\nAnswer: {make_corpus.answer(kind, product, order)}")
    return texts


def build_tokenizer(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, EOS, IM_START, IM_END],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    extra = ["system", "user", "assistant", "Hello! Thanks for contacting Northwind Gadgets."]
    tok.train_from_iterator(texts + extra, trainer=trainer)
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD,
        eos_token=EOS,
        additional_special_tokens=[IM_START, IM_END],
        model_max_length=512,
    )
    hf.chat_template = CHAT_TEMPLATE
    return hf


def build(
    out: Path,
    *,
    steps: int = 200,
    seed: int = 0,
    vocab_size: int = 2048,
    hidden: int = 128,
    layers: int = 4,
    log: bool = True,
) -> Path:
    torch.manual_seed(seed)
    texts = pretraining_texts(seed)
    tokenizer = build_tokenizer(texts, vocab_size)
    eos_id = tokenizer.convert_tokens_to_ids(EOS)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 3,
        num_hidden_layers=layers,
        num_attention_heads=hidden // 64,
        num_key_value_heads=1,
        head_dim=64,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        eos_token_id=eos_id,
    )
    model = LlamaForCausalLM(config)

    # Pack documents separated by EOS into 128-token rows. A hand-written loop: this is a
    # fixture builder, and 400 full-parameter steps need nothing of Trainer's machinery.
    ids: list[int] = []
    rng = random.Random(seed)
    order = list(range(len(texts)))
    for _ in range(2):
        rng.shuffle(order)
        for i in order:
            ids += tokenizer(texts[i])["input_ids"] + [eos_id]
    block = 128
    rows = torch.tensor(ids[: len(ids) // block * block]).view(-1, block)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=max(steps, 1), pct_start=0.1)
    model.train()
    t0 = time.time()
    for step in range(steps):
        batch = rows[torch.randint(0, len(rows), (32,))]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        if log and (step % 50 == 0 or step == steps - 1):
            print(f"pretrain step {step:4d} loss {loss.item():.3f} ({time.time() - t0:.0f}s)", flush=True)
    model.eval()
    model.generation_config.eos_token_id = eos_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("models/tiny-support-llama"))
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    n_params = sum(p.numel() for p in LlamaForCausalLM.from_pretrained(build(args.out, steps=args.steps, seed=args.seed)).parameters())
    print(f"saved {args.out} ({n_params / 1e6:.2f} M parameters)")


if __name__ == "__main__":
    main()
