# GPU serving image: nlpforge's OpenAI-compatible server (`nlpforge serve`, vllm engine) on the
# official vLLM image, which brings CUDA, torch and vLLM. Only the few pure-Python packages the
# server needs beyond what that image has are installed: nlpforge's training stack (trl,
# spaCy, datasets, ...) stays out of the image, and the image's torch/transformers are kept.
#
#   docker build -t nlpforge-serve .
#   docker run --gpus all -p 8000:8000 -v $PWD/runs/quickstart-chat/export:/models/bundle:ro \
#       -e NLPFORGE_API_KEY=change-me nlpforge-serve
#   # a registry instead of one bundle:
#   docker run --gpus all -p 8000:8000 -v $PWD/registry:/models/registry:ro nlpforge-serve support-bot@production
ARG VLLM_IMAGE=vllm/vllm-openai:latest
FROM ${VLLM_IMAGE}

WORKDIR /opt/nlpforge
COPY pyproject.toml README.md ./
COPY nlpforge ./nlpforge
RUN pip install --no-cache-dir --no-deps . \
 && pip install --no-cache-dir "typer>=0.12" "rich>=13" "pyyaml>=6" "prometheus-client>=0.20" "uvicorn>=0.30" "fastapi>=0.115"

ENV HF_HUB_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false \
    NLPFORGE_REGISTRY=/models/registry
EXPOSE 8000
# SIGTERM drains open requests (up to --drain seconds) before the engine stops.
STOPSIGNAL SIGTERM
ENTRYPOINT ["nlpforge", "serve", "--host", "0.0.0.0", "--port", "8000", "--engine", "vllm"]
CMD ["/models/bundle"]
