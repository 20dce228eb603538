#!/usr/bin/env bash
# GPU check, ready to run on one CUDA GPU (no vLLM, no model hub; about 8 minutes):
#   1. builds a randomly initialised Llama of about 0.5 B parameters with the quickstart tokenizer;
#   2. cleans and prepares the quickstart corpus for it, then trains LoRA through `nlpforge train`
#      in bf16 on CUDA (and QLoRA when bitsandbytes is installed);
#   3. prints tokens/s and peak GPU memory beside `nlpforge check`'s estimate for the same recipe,
#      with their ratio.
# Usage: bash scripts/gpu_check.sh [WORKDIR]              (from the repository root)
#        bash scripts/gpu_check.sh --cpu-part WORKDIR     (any machine: only the steps that need no
#        GPU, the tokenizer and the spaCy clean stage, so that a GPU machine with neither spaCy nor
#        a network finishes the check from the carried WORKDIR; wheels in WORKDIR/wheels, such as
#        pydantic and bitsandbytes, are installed there first)
# Needs: python with torch (CUDA), transformers, peft, accelerate, and nlpforge's light
# dependencies (pydantic, pyyaml, rich, typer; spacy, datasketch, ftfy, py3langid too when the
# clean stage has not run yet); the preflight names any that are missing. CI never runs this:
# there is no GPU there.
set -euo pipefail
cd "$(dirname "$0")/.."
PART=all
if [[ ${1:-} == --cpu-part ]]; then PART=cpu; shift; fi
WORK=${1:-$(mktemp -d /tmp/nlpforge-gpu.XXXXXX)}
PY=${PYTHON:-python}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [[ $PART == all && -d "$WORK/wheels" ]]; then
  echo "== installing the carried wheels: $(cd "$WORK/wheels" && echo *.whl)"
  $PY -m pip install --no-index --no-deps --quiet "$WORK"/wheels/*.whl
fi

echo "== preflight"
$PY - "$PART" "$WORK" <<'EOF'
import importlib.util, sys
from pathlib import Path
import torch
part, work = sys.argv[1], Path(sys.argv[2])
need = ["transformers", "peft", "accelerate", "pydantic", "yaml", "rich", "typer", "safetensors", "tokenizers"]
if part == "cpu" or not (work / "run-lora/clean/corpus.jsonl").exists():
    need += ["spacy", "datasketch", "ftfy", "py3langid"]
missing = [m for m in need if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"missing Python packages: {missing}; install them (pip install -e .), or run the clean stage elsewhere (--cpu-part) and rerun")
if part == "all":
    assert torch.cuda.is_available(), "no CUDA GPU visible to torch"
    print(f"python {sys.version.split()[0]}, torch {torch.__version__}, {torch.cuda.get_device_name(0)}, bitsandbytes: {importlib.util.find_spec('bitsandbytes') is not None}")
EOF

SETS_COMMON=(--set "model.path=$WORK/llama-0.5b" --set model.dtype=bfloat16 --set model.max_length=512 --set train.max_steps=60 --set train.batch_size=16
             --set train.save_steps=1000 --set train.logging_steps=10 --set train.gradient_checkpointing=false)
METHODS=(lora)
if [[ $PART == cpu ]] || $PY -c "import bitsandbytes" 2>/dev/null; then METHODS+=(qlora); fi

if [[ ! -f "$WORK/llama-0.5b/config.json" ]]; then
  echo "== the quickstart tokenizer and a ~0.5 B Llama config"
  $PY - "$WORK" <<'EOF'
import sys
from pathlib import Path
sys.path.insert(0, "scripts")
import build_tiny_model
from transformers import AutoTokenizer, LlamaConfig
work = Path(sys.argv[1])
tiny = build_tiny_model.build(work / "tiny", steps=0, log=False)  # the tokenizer and template only
tok = AutoTokenizer.from_pretrained(tiny)
cfg = LlamaConfig(vocab_size=len(tok), hidden_size=1280, intermediate_size=3456, num_hidden_layers=24, num_attention_heads=20, num_key_value_heads=4,
                  max_position_embeddings=2048, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                  tie_word_embeddings=False, dtype="bfloat16")
cfg.save_pretrained(work / "llama-0.5b")
tok.save_pretrained(work / "llama-0.5b")
EOF
fi
for method in "${METHODS[@]}"; do
  if [[ ! -f "$WORK/check-$method.txt" ]]; then
    echo "== $method: nlpforge check (reads the config: no weights needed)"
    $PY -m nlpforge check recipes/quickstart-chat.yaml "${SETS_COMMON[@]}" --set "peft.method=$method" > "$WORK/check-$method.txt"
  fi
  tail -12 "$WORK/check-$method.txt"
done
if [[ ! -f "$WORK/run-lora/clean/corpus.jsonl" ]]; then
  echo "== clean (spaCy; the same for every method)"
  $PY -m nlpforge run recipes/quickstart-chat.yaml --stages clean --run-dir "$WORK/run-lora" --quiet
  rm -rf "$WORK/run-qlora" && cp -r "$WORK/run-lora" "$WORK/run-qlora"
fi
if [[ $PART == cpu ]]; then
  echo "== CPU part done in $WORK"
  exit 0
fi

if [[ ! -f "$WORK/llama-0.5b/model.safetensors" ]]; then
  echo "== random weights for the ~0.5 B Llama"
  $PY - "$WORK" <<'EOF'
import sys
from pathlib import Path
import torch
from transformers import LlamaConfig, LlamaForCausalLM
work = Path(sys.argv[1])
torch.manual_seed(0)
model = LlamaForCausalLM(LlamaConfig.from_pretrained(work / "llama-0.5b")).to(torch.bfloat16)
print(f"parameters: {sum(p.numel() for p in model.parameters()):,}")
model.save_pretrained(work / "llama-0.5b")
EOF
fi

run_one() {  # $1: peft method
  local method=$1 sets=("${SETS_COMMON[@]}" --set "peft.method=$1")
  echo "== $method: prepare, then train"
  $PY -m nlpforge run recipes/quickstart-chat.yaml --stages clean,prepare --run-dir "$WORK/run-$method" --quiet "${sets[@]}"
  $PY - "$WORK" "$method" "${sets[@]}" <<'EOF'
import json, re, sys, time
from pathlib import Path
import torch
from nlpforge.pipeline import run_pipeline
from nlpforge.recipe import load_recipe
from nlpforge.runs import RunDir
work, method, sets = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
overrides = [sets[i + 1] for i in range(0, len(sets), 2)]
recipe = load_recipe("recipes/quickstart-chat.yaml", overrides)
torch.cuda.reset_peak_memory_stats()
t0 = time.time()
run_pipeline(recipe, Path("recipes/quickstart-chat.yaml"), RunDir(work / f"run-{method}"), ["train"])
summary = json.loads((work / f"run-{method}" / "train" / "summary.json").read_text())
peak = torch.cuda.max_memory_allocated() / 2**30
text = (work / f"check-{method}.txt").read_text()
est = float(re.search(r"GPU memory estimate: total\s*│\s*([0-9.]+) GiB", text).group(1))
row = {"method": method, "tokens_per_s": summary.get("tokens_per_second"), "steps": summary["steps"], "seconds": round(time.time() - t0, 1),
       "peak_gib": round(peak, 2), "estimate_gib": est, "peak/estimate": round(peak / est, 2)}
print(json.dumps(row))
with open(work / "gpu_check.jsonl", "a") as f:
    f.write(json.dumps(row) + "\n")
EOF
}

rm -f "$WORK/gpu_check.jsonl"
for method in "${METHODS[@]}"; do run_one "$method"; done

echo "== result ($WORK/gpu_check.jsonl)"
$PY - "$WORK" <<'EOF'
import json, sys
rows = [json.loads(x) for x in open(f"{sys.argv[1]}/gpu_check.jsonl")]
print("| method | tokens/s | peak GPU memory (GiB) | nlpforge check estimate (GiB) | peak / estimate |")
print("|---|---|---|---|---|")
for r in rows:
    print(f"| {r['method']} | {r['tokens_per_s']} | {r['peak_gib']} | {r['estimate_gib']} | {r['peak/estimate']} |")
EOF
