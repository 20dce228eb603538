"""nlpforge: one YAML recipe from raw domain text to a served, evaluated language model."""

import logging

__version__ = "0.1.0"

# bitsandbytes (the qlora extra) warns on every import, CPU only, that an optional fused kernel
# package is missing; the plain kernels it falls back to are the ones QLoRA is tested on here
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
