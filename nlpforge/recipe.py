"""The recipe: a pydantic schema (unknown keys are errors) and a loader that reports every
error at once with file, line, key and, for a typo, the key that was probably meant."""

from __future__ import annotations

import difflib
import hashlib
import json
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from nlpforge.errors import RecipeError

PiiEntity = Literal[
    "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS", "URL", "US_SSN", "DATE_TIME",
    "MEDICAL_RECORD_NUMBER", "HEALTH_PLAN_ID", "ACCOUNT_NUMBER", "LICENSE_NUMBER", "VEHICLE_ID", "DEVICE_ID",  # HIPAA ids, by context word
    "PERSON", "LOCATION", "NRP", "ORGANIZATION",  # from a trained spaCy pipeline's NER (clean.spacy_model), with context rules and gazetteers
]
PiiPreset = Literal["hipaa-safe-harbor", "gdpr", "pci"]
PiiOperator = Literal["replace", "redact", "mask", "hash", "pseudonym"]


# Upper bounds: counts and sizes end up in C ints (torch, numpy, tokenizers, datasketch), where a
# bigger value crashes hours into a run; worker counts beyond any one machine spawn until it falls over.
INT32 = 2**31 - 1
WORKERS = 4096


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=(), allow_inf_nan=False)  # .inf epochs or .nan rates pass a > 0 check


class Splits(Strict):
    eval: float = Field(0.1, gt=0, lt=1, description="fraction of cleaned conversations held out for eval")


DataFormat = Literal["messages", "alpaca", "sharegpt", "text", "classification", "preference", "kto"]


class DataConfig(Strict):
    inputs: list[str] = Field(min_length=1, description="files or folders (JSONL, JSON, CSV, Parquet, text, HTML), relative to the working directory")
    format: DataFormat = Field(
        "messages",
        description="messages: {messages: [{role, content}]}; alpaca: {instruction, input?, output}; sharegpt: {conversations: [{from, value}]}; "
        "text: documents (continued pretraining); classification: {text, label} (label list = multi-label); "
        "preference: {prompt, chosen, rejected} (DPO); kto: {prompt, completion, label: bool}",
    )
    messages_field: str = "messages"
    text_field: str = "text"
    columns: dict[str, str] = Field({}, description="canonical field of the format -> column in your files, e.g. {label: intent, text: body}")
    label_separator: str | None = Field(None, description="classification: split a string label on this (e.g. '|') into a multi-label list")
    weights: list[float] | None = Field(None, description="one weight per entry of inputs: its training rows are used weight times (0.5 = a seeded half, 2 = twice)")
    splits: Splits = Splits()
    num_proc: int = Field(1, ge=1, le=WORKERS, description="processes that render and tokenise conversations in prepare (datasets.map); the output is the same for any value")
    streaming: bool = Field(False, description="SFT (messages, alpaca, sharegpt, text): prepare tokenises only the eval split, and training renders the corpus "
                            "as it reads it (datasets IterableDataset, shuffle buffer), for corpora whose tokenised copy should not be written; "
                            "needs train.max_steps; rows are held out by a seeded hash of their source")
    eval_inputs: list[str] = Field(
        [], description="a fixed held-out set (a benchmark's test split, last quarter's tickets): cleaned with the same rules, read before "
        "data.inputs so training rows that duplicate it are dropped as duplicates, and used as the eval split instead of data.splits.eval")

    @property
    def all_inputs(self) -> list[str]:
        """What the clean stage reads: ``eval_inputs`` first (dedup keeps the first copy), then ``inputs``."""
        return [*self.eval_inputs, *self.inputs]

    @model_validator(mode="after")
    def _columns_and_weights(self) -> DataConfig:
        from nlpforge.data.formats import COLUMNS

        valid = COLUMNS[self.format]
        unknown = sorted(set(self.columns) - set(valid))
        if unknown:
            raise ValueError(f"columns: {unknown} not a field of format {self.format}; valid: {sorted(valid)}")
        if self.weights is not None:
            if len(self.weights) != len(self.inputs):
                raise ValueError(f"weights: {len(self.weights)} weights for {len(self.inputs)} inputs; give one per input")
            if any(w <= 0 for w in self.weights):
                raise ValueError("weights: every weight must be > 0")
        return self


class QualityConfig(Strict):
    preset: Literal["domain", "web", "off"] = Field("domain", description="domain: keeps code, tables, short records; web: published thresholds")
    overrides: dict[str, float | None] = Field({}, description="rule name -> threshold (null switches the rule off)")
    c4_lines: bool | None = Field(None, description="drop lines failing C4's line rules (format text); default: on for the web preset only")

    @field_validator("preset", mode="before")
    @classmethod
    def _yaml_off(cls, value: object) -> object:
        return "off" if value is False else value  # YAML 1.1 reads a bare `off` as false

    @model_validator(mode="after")
    def _known_rules(self) -> QualityConfig:
        from nlpforge.corpus.quality import validate_names

        problems = validate_names(self.overrides)
        if problems:
            raise ValueError("; ".join(problems))
        return self


class NearDedupConfig(Strict):
    enabled: bool = False
    threshold: float = Field(0.72, gt=0, lt=1, description="estimated Jaccard similarity of word n-gram sets")
    ngram: int = Field(5, gt=0, le=INT32)
    bands: int = Field(14, gt=0, le=1024)
    rows: int = Field(8, gt=0, le=1024)


class BoilerplateConfig(Strict):
    enabled: bool = Field(False, description="drop lines that recur across many documents (signatures, disclaimers); format text only")
    min_docs: int = Field(5, gt=1, le=INT32, description="a line is boilerplate when at least this many documents hold it ...")
    min_fraction: float = Field(0.01, ge=0, le=1, description="... and at least this share of all documents")


class DecontaminateConfig(Strict):
    against: list[str] = Field([], description="eval/benchmark files whose text must not leak into training data")
    ngram: int = Field(13, gt=0, le=INT32, description="drop a document sharing any word n-gram of this length with them")
    text_field: str = "text"


class CleanConfig(Strict):
    normalize: Literal["NFC", "NFKC"] = "NFKC"
    fix_mojibake: bool = Field(True, description="repair mis-decoded text with ftfy")
    boilerplate: BoilerplateConfig = BoilerplateConfig()
    dedup: Literal["exact", "none"] = "exact"
    near_dedup: NearDedupConfig = NearDedupConfig()
    decontaminate: DecontaminateConfig = DecontaminateConfig()
    sentence_dedup: int | None = Field(None, gt=0, le=INT32, description="C4: keep only the first occurrence of any span of this many sentences (3 in C4); format text only")
    min_words: int = Field(3, ge=0, le=INT32)
    max_words: int = Field(100_000, gt=0, le=INT32)
    max_chars: int = Field(1_000_000, gt=0, le=INT32, description="longer records (after normalisation) are rejected as too_long before the spaCy pass")
    quality: QualityConfig = QualityConfig()
    languages: list[str] | None = Field(None, description="ISO 639-1 codes to keep, e.g. [en]; offline identification (py3langid)")
    language_min_words: int = Field(5, ge=1, le=INT32, description="texts shorter than this are not language-checked")
    spacy_model: str | None = Field(None, description="trained spaCy pipeline (package name or path) whose NER feeds PII; default: blank English + sentencizer")
    pii_terms: dict[str, list[str]] = Field({}, description="entity label -> exact terms to anonymise (spaCy EntityRuler)")
    pii_patterns: dict[str, str] = Field({}, description="entity label -> regular expression to anonymise (e.g. internal account ids)")

    @model_validator(mode="after")
    def _patterns_compile(self) -> CleanConfig:
        import re

        for label, pattern in self.pii_patterns.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"pii_patterns.{label}: not a valid regular expression: {exc}") from None
        return self
    pii: list[PiiEntity] = ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS", "US_SSN"]
    pii_operator: PiiOperator = "replace"
    pii_salt_env: str = Field("NLPFORGE_PII_SALT", description="environment variable holding the salt of the hash and pseudonym operators")
    pii_preset: PiiPreset | None = Field(None, description="a named policy added to clean.pii: hipaa-safe-harbor (the 18 identifiers, ZIP3 and year kept, ages 90+; "
                                         "an audit table in the report), gdpr, pci")
    pii_context: bool = Field(True, description="context rules (titles, greetings, sign-offs, headers, addresses) and Faker gazetteers beside the NER for PERSON and LOCATION")
    batch_size: int = Field(256, gt=0, le=INT32)
    n_process: int = Field(1, ge=1, le=WORKERS, description="worker processes (engine local) or Ray actors (engine ray), one spaCy pipeline each")
    engine: Literal["local", "ray"] = Field("local", description="local: this machine; ray: Ray Data, the per-document steps on clean.n_process actors and "
                                            "dedup as global shuffles, the same outputs (pip install 'nlpforge[ray]')")
    ray_address: str | None = Field(None, description="engine ray: the cluster to join (auto, ray://HOST:10001); default: start a local one")


class ModelConfig(Strict):
    path: str = Field(description="local folder or hub id of the base model")
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    chat_template: str | None = Field(None, description="inline Jinja template or path to a .jinja file")
    max_length: int = Field(512, gt=0, le=INT32, description="longest training sample in tokens; longer ones are rejected")
    trust_remote_code: bool = False
    pad_token: str | None = Field(None, description="token to pad batches with; default: the tokenizer's own if it is neither eos nor end-of-turn, "
                                  "else an unused special token (e.g. SmolLM2's <|endoftext|>), else a new <|pad|> (embeddings resized; export merged)")


class PeftConfig(Strict):
    method: Literal["lora", "qlora", "ia3", "prompt_tuning"] = Field("lora", description="qlora = LoRA on a 4-bit (bitsandbytes NF4) base: nlpforge[qlora], bitsandbytes>=0.50 (also on a CPU)")
    r: int = Field(8, gt=0, le=65536, description="LoRA rank (no model is wider than 65536)")
    alpha: int = Field(16, gt=0, le=INT32)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"
    use_rslora: bool = Field(False, description="rank-stabilised LoRA: scale alpha/sqrt(r) instead of alpha/r")
    use_dora: bool = Field(False, description="weight-decomposed LoRA (DoRA)")
    modules_to_save: list[str] | None = Field(None, description="modules trained in full and saved with the adapter; classification adds the head itself")
    num_virtual_tokens: int = Field(16, gt=0, le=65536, description="prompt_tuning: soft prompt length")
    prompt_init_text: str | None = Field(None, description="prompt_tuning: initialise the soft prompt from this text's embeddings")


class EarlyStopping(Strict):
    metric: str = Field("eval_loss", description="metric the Trainer's evaluate() returns, e.g. eval_loss, eval_accuracy, eval_macro_f1")
    greater_is_better: bool | None = Field(None, description="default: false for *loss, true otherwise")
    patience: int = Field(3, gt=0, le=INT32, description="evaluations without improvement before stopping")
    threshold: float = Field(0.0, ge=0)


class TrainConfig(Strict):
    task: Literal["sft", "classification", "dpo", "kto"] | None = Field(None, description="default from data.format: classification, preference->dpo, kto, else sft")
    epochs: float = Field(1.0, gt=0)
    max_steps: int = Field(-1, ge=-1, le=INT32, description="overrides epochs when > 0; -1: train for epochs")
    batch_size: int = Field(8, gt=0, le=INT32)
    grad_accum: int = Field(1, gt=0, le=INT32)
    learning_rate: float = Field(2e-4, gt=0)
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "cosine"
    warmup_steps: int = Field(0, ge=0, le=INT32)
    weight_decay: float = Field(0.0, ge=0)
    save_steps: int = Field(50, gt=0, le=INT32)
    save_total_limit: int = Field(2, gt=0, le=INT32)
    logging_steps: int = Field(10, gt=0, le=INT32)
    threads: int | None = Field(None, gt=0, le=WORKERS, description="torch CPU threads; default: all cores")
    packing: bool = Field(False, description="sft: concatenate samples into padding-free rows with per-sample position ids (no attention across samples)")
    group_by_length: bool = Field(True, description="without packing: batch samples of similar length to cut padding")
    gradient_checkpointing: bool = False
    class_weights: bool = Field(False, description="classification: weight the loss by inverse class frequency (multi-label: positive weights)")
    threshold: float = Field(0.5, gt=0, lt=1, description="classification, multi-label: decision threshold on each label's probability")
    beta: float = Field(0.1, gt=0, description="dpo/kto: strength of the KL penalty to the reference model")
    eval_steps: int | None = Field(None, gt=0, le=INT32, description="evaluate on the validation split every N steps (needed by early_stopping)")
    early_stopping: EarlyStopping | None = Field(None, description="stop when the metric stops improving; the best checkpoint becomes the adapter")
    report_to: list[Literal["tensorboard", "mlflow", "wandb", "trackio", "comet_ml", "clearml", "dvclive"]] = Field([], description="passed to the Trainer's report_to")

    @field_validator("max_steps")
    @classmethod
    def _steps_or_epochs(cls, value: int) -> int:
        if value == 0:
            raise ValueError("max_steps must be -1 (train for epochs) or > 0")
        return value

    @model_validator(mode="after")
    def _eval_for_early_stopping(self) -> TrainConfig:
        if self.early_stopping is not None and self.eval_steps is None:
            raise ValueError("early_stopping needs eval_steps (how often to evaluate)")
        return self


class TuneParam(Strict):
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _range_or_choices(self) -> TuneParam:
        if self.choices is None and (self.low is None or self.high is None):
            raise ValueError("give low and high, or choices")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"low {self.low} > high {self.high}")
        return self


class TuneConfig(Strict):
    metric: str = Field("eval_loss", description="metric of the validation split to optimise")
    direction: Literal["minimize", "maximize"] = "minimize"
    params: dict[str, TuneParam] = Field({}, description="recipe key path -> range, e.g. train.learning_rate: {low: 1e-5, high: 1e-3, log: true}")


class GateConfig(Strict):
    """Bounds one metric must meet for the run to pass (and the model to be exported)."""

    min: float | None = Field(None, description="tuned value must be >= this")
    max: float | None = Field(None, description="tuned value must be <= this")
    max_increase: float | None = Field(None, ge=0, description="tuned - base must be <= this (needs compare_base)")
    max_decrease: float | None = Field(None, ge=0, description="base - tuned must be <= this (needs compare_base)")

    @model_validator(mode="after")
    def _some_bound(self) -> GateConfig:
        if all(v is None for v in (self.min, self.max, self.max_increase, self.max_decrease)):
            raise ValueError("a gate needs at least one of min, max, max_increase, max_decrease")
        return self


class JudgeConfig(Strict):
    base_url: str = Field(description="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    model: str
    api_key_env: str | None = Field(None, description="environment variable holding the API key")


class FactualityConfig(Strict):
    enabled: bool = Field(True, description="score generated answers against the reference and prompt (model-free checks)")
    samples: int = Field(0, ge=0, le=INT32, description="SelfCheck: sampled answers per prompt (0 = off)")
    temperature: float = Field(0.8, gt=0, description="sampling temperature of the SelfCheck answers")
    embedding: bool = Field(False, description="also the MiniLM-embedding SelfCheck variant (needs samples)")
    token_uncertainty: bool = Field(False, description="mean token log-probability/entropy of the greedy answer")
    judge: JudgeConfig | None = Field(None, description="LLM-as-judge endpoint")
    context_files: list[str] = Field([], description="text files every answer must stay true to (a product sheet, a policy): added to each answer's source")
    checker: str | None = Field(None, description="folder written by `nlpforge factcheck train`: its score joins the model-free one (their mean)")


class LmEvalConfig(Strict):
    tasks: list[str] = Field(min_length=1, description="lm-evaluation-harness task names")
    include_path: str | None = Field(None, description="folder of local task YAMLs (e.g. a JSONL task with dataset_path: json)")
    limit: int | None = Field(None, gt=0, le=INT32, description="examples per task (default: all)")
    num_fewshot: int | None = Field(None, ge=0, le=INT32)
    batch_size: int = Field(8, gt=0, le=INT32)
    endpoint: str | None = Field(None, description="OpenAI-compatible base URL (…/v1): run local-completions against it instead of the hf backend")
    endpoint_model: str | None = Field(None, description="served model name at the endpoint")


class FairnessConfig(Strict):
    group_fields: list[str] = Field([], description="columns of the eval rows holding group membership (per-group metrics and gaps)")
    positive_label: str | None = Field(None, description="the favourable label (default: the second label)")
    counterfactual: bool = Field(True, description="swap identity terms and spaCy-found names and report the prediction flip rate")
    term_pairs: list[tuple[str, str]] | None = Field(None, description="identity-term pairs to swap (default: nlpforge.evals.fairness.TERM_PAIRS)")


class ThresholdConfig(Strict):
    """Classifiers with a positive class (binary, or one label of a multi-label set): pick the
    decision threshold on the held-out split that meets a target (fraud-style operating point)."""

    positive_label: str | None = Field(None, description="the label the threshold applies to (default: eval.fairness.positive_label, else the second label)")
    max_fpr: float | None = Field(None, gt=0, lt=1, description="highest false-positive rate allowed")
    min_precision: float | None = Field(None, gt=0, le=1, description="lowest precision allowed")

    @model_validator(mode="after")
    def _one_target(self) -> ThresholdConfig:
        if (self.max_fpr is None) == (self.min_precision is None):
            raise ValueError("give exactly one of max_fpr or min_precision")
        return self


class EvalConfig(Strict):
    max_samples: int = Field(100, gt=0, le=INT32)
    max_new_tokens: int = Field(64, gt=0, le=INT32)
    batch_size: int = Field(16, gt=0, le=INT32)
    compare_base: bool = True
    factuality: FactualityConfig = FactualityConfig()
    gates: dict[str, GateConfig] = Field({}, description="metric -> bounds, e.g. {hallucination_score: {max_increase: 0.02}, exact_match: {min: 0.5}}")
    report: bool = Field(True, description="write eval/report.html")
    fairness: FairnessConfig = Field(FairnessConfig(), description="classification runs: fairness across groups")
    threshold: ThresholdConfig | None = Field(None, description="classification runs: select and export a decision threshold for a target FPR or precision")
    lm_eval: LmEvalConfig | None = Field(None, description="lm-evaluation-harness tasks on the tuned model (or `nlpforge eval RECIPE --lm-eval TASKS`)")


class ExportConfig(Strict):
    merge: bool = True
    dtype: Literal["float32", "bfloat16", "float16"] | None = Field(None, description="default: model.dtype")
    max_new_tokens: int = Field(256, gt=0, le=INT32, description="default max_tokens of the served model")
    temperature: float = Field(0.0, ge=0, description="default sampling temperature of the served model; 0 = greedy")
    top_p: float = Field(1.0, gt=0, le=1)
    check_samples: int = Field(8, gt=0, le=INT32)
    merge_tolerance: float = Field(1e-3, gt=0)
    format: Literal["merged", "adapter"] = Field("merged", description="merged: one set of weights; adapter: base weights + adapters/<name> for vLLM multi-LoRA")
    max_lora_rank: int = Field(16, ge=1, le=512, description="--max-lora-rank written into the serve flags of an adapter bundle")
    drift: Literal["embedding", "words", "off"] = Field("embedding", description="drift.json for the server's input-drift gauges: training prompt words (+ MiniLM centroid)")


class ServeConfig(Strict):
    """How `nlpforge serve RECIPE` serves the exported bundle (command-line flags win). The
    parallelism keys and ``engine_args`` reach vLLM's engine (in process, ``vllm-server`` and
    ``nlpforge score --engine vllm``) and the exported serve flags; ``check`` refuses what this
    machine cannot run and engine arguments vLLM does not have."""

    engine: Literal["vllm", "hf", "vllm-server"] = Field("vllm", description="vllm: AsyncLLM in process; hf: transformers with dynamic batching; vllm-server: vLLM's own server")
    host: str = "127.0.0.1"
    port: int = Field(8000, gt=0, lt=65536)
    max_model_len: int | None = Field(None, gt=0, description="default: model.max_length")
    tensor_parallel_size: int = Field(1, ge=1, le=1024, description="GPUs each model replica is split across (vLLM tensor parallelism)")
    pipeline_parallel_size: int = Field(1, ge=1, le=1024, description="pipeline stages of each replica")
    data_parallel_size: int = Field(1, ge=1, le=1024, description="model replicas (vLLM data parallelism)")
    engine_args: dict[str, Any] = Field({}, description="further vLLM engine arguments by name, e.g. {gpu_memory_utilization: 0.85, max_num_seqs: 64}")
    max_queue: int = Field(256, ge=1, le=1_000_000, description="sequences in flight before answering 429")
    max_tokens: int = Field(4096, ge=1, le=10_000_000, description="largest max_tokens a request may ask for")
    max_prompt_tokens: int | None = Field(None, ge=1, description="longest prompt in tokens (default: max_model_len - 1)")
    max_body_bytes: int = Field(1 << 20, ge=1024, le=1 << 30, description="largest request body")
    threads: int | None = Field(None, ge=1, le=4096, description="hf engine: torch CPU threads")
    max_batch: int = Field(16, ge=1, le=4096, description="hf engine: most sequences per decoding batch")
    monitor_factuality: bool = Field(True, description="score grounded chat answers (metadata.context, messages named context) off the request path")
    monitor_drift: bool = Field(True, description="compare chat prompts with the bundle's drift.json (training prompts), off the request path")
    monitor_cpu: float = Field(0.1, gt=0, le=1, description="share of one core the monitoring worker may use; beyond it answers are sampled (the rest counted as dropped)")
    feedback_retain: int = Field(1_000_000, ge=1, le=2**62, description="--feedback-dir: the newest completions kept for feedback and `nlpforge monitor` (older ones are deleted)")
    hallucination_gate: float = Field(0.5, ge=0, le=1, description="grounded answers above this hallucination_score are counted")

    def vllm_overrides(self) -> dict[str, Any]:
        """Engine arguments from this section, by vLLM's names."""
        par = {"tensor_parallel_size": self.tensor_parallel_size, "pipeline_parallel_size": self.pipeline_parallel_size, "data_parallel_size": self.data_parallel_size}
        return {**{k: v for k, v in par.items() if v != 1}, **({"max_model_len": self.max_model_len} if self.max_model_len else {}), **self.engine_args}


class TrackConfig(Strict):
    """Experiment tracking: each `nlpforge run` becomes one MLflow run (params, stage metrics,
    the loss curve, eval results, the manifest and the HTML report as artifacts)."""

    mlflow: bool = Field(False, description="log the run to MLflow (pip install 'nlpforge[track]')")
    experiment: str | None = Field(None, min_length=1, description="MLflow experiment (default: the recipe's name)")
    tracking_uri: str | None = Field(None, min_length=1, description="MLflow store when $MLFLOW_TRACKING_URI is unset (default: MLflow's, ./mlflow.db and ./mlruns)")


class ImproveConfig(Strict):
    """`nlpforge improve`: preference tuning on served feedback, on top of the production bundle,
    compared with production on the feedback's held-out part and the recipe's held-out split."""

    method: Literal["kto", "dpo"] = Field("kto", description="kto: thumbs up/down (and preferred answers) as single labelled completions; dpo: preferred vs served pairs")
    heldout: float = Field(0.2, gt=0, lt=1, description="share of the feedback's completions held out for the comparison (by completion id: stable as feedback grows)")
    epochs: float = Field(1.0, gt=0)
    max_steps: int = Field(-1, ge=-1, le=INT32, description="overrides epochs when > 0")
    learning_rate: float = Field(5e-5, gt=0, description="preference tuning wants a smaller rate than SFT")
    beta: float = Field(0.1, gt=0, description="strength of the KL penalty to the production model")
    gates: dict[str, GateConfig] = Field(
        {"exact_match": GateConfig(max_decrease=0.0), "hallucination_score": GateConfig(max_increase=0.0)},
        description="candidate against production on both held-out sets; default: no regression in exact match, hallucination_score must not rise")
    stage: Literal["staging", "production"] = Field("staging", description="the stage a candidate that passes every gate is registered into")


class Recipe(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    seed: int = Field(42, ge=0, le=2**32 - 1, description="what numpy and torch seeding accept")
    data: DataConfig
    clean: CleanConfig = CleanConfig()
    model: ModelConfig
    peft: PeftConfig = PeftConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    export: ExportConfig = ExportConfig()
    serve: ServeConfig = ServeConfig()
    tune: TuneConfig | None = None
    track: TrackConfig = TrackConfig()
    improve: ImproveConfig = ImproveConfig()

    @model_validator(mode="after")
    def _task_matches_format(self) -> Recipe:
        fmt = self.data.format
        implied = {"classification": "classification", "preference": "dpo", "kto": "kto"}.get(fmt, "sft")
        task = self.train.task or implied
        if task != implied:
            valid = {"sft": "messages, alpaca, sharegpt or text", "classification": "classification", "dpo": "preference", "kto": "kto"}[task]
            raise ValueError(f"train.task={task} needs data.format {valid}, not {fmt}")
        self.train.task = task
        if self.data.streaming and task != "sft":
            raise ValueError(f"data.streaming is for SFT (data.format messages, alpaca, sharegpt or text), not {fmt}")
        if self.data.streaming and self.train.max_steps <= 0:
            raise ValueError("data.streaming: a stream has no length to count epochs by; set train.max_steps")
        if self.peft.method == "prompt_tuning" and self.train.packing:
            raise ValueError("peft.method=prompt_tuning prepends virtual tokens to each row; it cannot train on packed rows (train.packing: false)")
        if self.tune is not None:
            for key in self.tune.params:
                section, _, field = key.partition(".")
                model = type(self).model_fields.get(section)
                nested = _nested_model(model.annotation) if model else None
                if nested is None or field not in nested.model_fields:
                    raise ValueError(f"tune.params: {key!r} is not a recipe key (e.g. train.learning_rate, peft.r)")
        return self

    def section_hash(self, *sections: str) -> str:
        def value(dotted: str) -> Any:
            node: Any = self
            for part in dotted.split("."):  # "train.task": one field of a section
                node = getattr(node, part)
            return node.model_dump(mode="json") if isinstance(node, BaseModel) else node

        dump = {s: value(s) for s in sections}
        return sha256_text(json.dumps(dump, sort_keys=True))

    def digest(self) -> str:
        return sha256_text(json.dumps(self.model_dump(mode="json"), sort_keys=True))


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --- loading ------------------------------------------------------------------------------


MAX_RECIPE_BYTES = 1 << 20  # a real recipe is a few KB
MAX_NODES = 10_000  # YAML nodes with every alias expanded; a real recipe has about 200
MAX_DEPTH = 64  # nesting levels, aliases expanded; a real recipe has 5


class _Refused(Exception):
    """A YAML document the loader will not build; ``mark`` is where (the offending alias)."""

    def __init__(self, problem: str, mark: yaml.Mark):
        super().__init__(problem)
        self.problem, self.mark = problem, mark


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that measures the document as it composes it: the nodes and the depth it
    would have with every alias expanded, each anchor measured once (memoised), so a "billion
    laughs" is refused after reading its 500 bytes instead of after expanding 9**9 nodes in
    the line map or in pydantic, and an alias inside its own anchor (a recursive structure)
    is refused instead of ending in a RecursionError."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self.nodes = self.depth = self.deepest = 0
        self.measured: dict[str, tuple[int, int]] = {}  # anchor -> (expanded nodes, expanded height)

    def _grow(self, nodes: int, deepest: int, mark: yaml.Mark, what: str) -> None:
        self.nodes += nodes
        self.deepest = max(self.deepest, deepest)
        expanded = " with its aliases expanded" if what else ""
        if self.nodes > MAX_NODES:
            raise _Refused(f"{what}the document would have more than {MAX_NODES:,} YAML nodes{expanded} (a recipe has about 200); refusing to build it", mark)
        if deepest > MAX_DEPTH:
            raise _Refused(f"{what}the document nests deeper than {MAX_DEPTH} levels{expanded}", mark)

    def fetch_flow_collection_start(self, token_class: type) -> None:
        # the scanner looks at every open bracket for each token: refuse deep flow nesting
        # here, before that turns a file of "[[[[..." into minutes of scanning
        if self.flow_level >= MAX_DEPTH:
            raise _Refused(f"the document nests deeper than {MAX_DEPTH} levels", self.get_mark())
        super().fetch_flow_collection_start(token_class)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self.anchors:  # else the composer reports the undefined alias
                if event.anchor not in self.measured:
                    raise _Refused(f"alias *{event.anchor} is used inside its own anchor &{event.anchor} (a recursive structure)", event.start_mark)
                nodes, height = self.measured[event.anchor]
                self._grow(nodes, self.depth + height, event.start_mark, f"alias *{event.anchor}: ")
            return super().compose_node(parent, index)
        start, outer = self.nodes, self.deepest
        self.depth += 1
        self.deepest = self.depth
        self._grow(1, self.depth, event.start_mark, "")
        node = super().compose_node(parent, index)
        if event.anchor is not None:
            self.measured[event.anchor] = (self.nodes - start, self.deepest - self.depth + 1)
        self.depth -= 1
        self.deepest = max(outer, self.deepest)
        return node


def _load_yaml(text: str) -> tuple[yaml.Node | None, Any]:
    """The composed node (for line numbers) and the data of a single YAML document; raises
    yaml.YAMLError or _Refused, and ValueError for a scalar Python will not build (an integer
    of more than 4300 digits)."""
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        return node, (loader.construct_document(node) if node is not None else None)
    finally:
        loader.dispose()


def _line_map(node: yaml.Node, path: tuple = (), out: dict | None = None) -> dict[tuple, int]:
    """Map each key path of a YAML document to its 1-based line (a walk bounded by
    MAX_NODES and MAX_DEPTH: :class:`_BoundedLoader` composed the node)."""
    out = {} if out is None else out
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):  # a complex key is refused by the constructor
                p = path + (key.value,)
                out[p] = key.start_mark.line + 1
                _line_map(value, p, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[path + (i,)] = item.start_mark.line + 1
            _line_map(item, path + (i,), out)
    return out


def _model_at(loc: tuple, root: type[BaseModel] = None) -> type[BaseModel] | None:  # type: ignore[assignment]
    """The pydantic model that holds the field at ``loc`` (for did-you-mean suggestions)."""
    model: type[BaseModel] = root or Recipe
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        nested = _nested_model(field.annotation)
        if nested is None:
            return None
        model = nested
    return model


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, list):
        for arg in typing.get_args(annotation):
            found = _nested_model(arg)
            if found:
                return found
    return None


def _set_path(data: dict, dotted: str, raw: str) -> None:
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = _load_yaml(raw)[1] if raw != "" else None


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Load and validate a recipe; raise RecipeError listing *every* problem at once.

    ``overrides`` are ``key.path=value`` strings (``--set``); values are parsed as YAML and
    validated exactly like the file's.
    """
    return load_config(path, Recipe, overrides)


M = typing.TypeVar("M", bound=BaseModel)


def load_config(path: str | Path | None, model: type[M], overrides: list[str] | None = None) -> M:
    """Load any config model from YAML (or from overrides alone when ``path`` is None)."""
    if path is None:
        path, text = Path("<--set>"), "{}"
    else:
        path = Path(path)
        text = _read_text(path)
    try:
        node, data = _load_yaml(text)
    except _Refused as exc:
        raise RecipeError(f"{path}:{exc.mark.line + 1}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise RecipeError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    except ValueError as exc:
        raise RecipeError(f"{path}: not a usable YAML value: {exc}") from None
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: expected a YAML mapping (key: value), got {type(data).__name__}")
    lines = _line_map(node) if node is not None else {}

    set_origin: dict[tuple, str] = {}
    problems: list[str] = []
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            problems.append(f"--set {item!r}: expected KEY.PATH=VALUE, for example --set train.max_steps=20")
            continue
        try:
            _set_path(data, key.strip(), value)
        except (yaml.YAMLError, _Refused, ValueError) as exc:
            problems.append(f"--set {item!r}: value is not valid YAML: {exc}")
            continue
        set_origin[tuple(key.strip().split("."))] = item

    try:
        result = model.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            problems.append(_describe(err, path, lines, set_origin, model))
        result = None
    if problems:
        n = len(problems)
        raise RecipeError(f"{path}: {n} error{'s' if n > 1 else ''}\n" + "\n".join(f"  - {p}" for p in problems))
    assert result is not None
    return result


def _read_text(path: Path) -> str:
    """The recipe file's text: at most MAX_RECIPE_BYTES of UTF-8 (a BOM is dropped)."""
    try:
        if not path.is_file():
            raise RecipeError(f"{path}: no such file")
        size = path.stat().st_size
        if size > MAX_RECIPE_BYTES:
            raise RecipeError(f"{path}: {size:,} bytes; a recipe is at most {MAX_RECIPE_BYTES:,} bytes (is this the recipe file?)")
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RecipeError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except OSError as exc:
        raise RecipeError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _describe(err: dict, path: Path, lines: dict[tuple, int], set_origin: dict[tuple, str], root: type[BaseModel]) -> str:
    loc = tuple(err["loc"])
    key = ".".join(str(p) for p in loc)
    origin = None
    for n in range(len(loc), 0, -1):
        if loc[:n] in set_origin:
            origin = f"--set {set_origin[loc[:n]]}"
            break
    if origin is None:
        line = None
        for n in range(len(loc), 0, -1):
            if loc[:n] in lines:
                line = lines[loc[:n]]
                break
        origin = f"{path}:{line}" if line else str(path)
    if err["type"] == "extra_forbidden":
        parent = _model_at(loc[:-1], root)
        valid = sorted(parent.model_fields) if parent else []
        hint = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.6)
        msg = f"unknown key '{loc[-1]}'"
        msg += f"; did you mean '{hint[0]}'?" if hint else ""
        msg += f" (valid keys here: {', '.join(valid)})" if valid else ""
        return f"{origin}: {key}: {msg}"
    if err["type"] == "missing":
        return f"{origin}: {key}: required key is missing"
    got = err.get("input")
    got_s = f" (got {_short(repr(got))})" if not isinstance(got, dict | list) else ""
    msg = err["msg"].removeprefix("Value error, ")  # pydantic's wrapper around our validators' own words
    return f"{origin}: {key}: {msg}{got_s}" if key else f"{origin}: {msg}"


def _short(text: str, n: int = 200) -> str:
    return text if len(text) <= n else f"{text[:n]}... ({len(text):,} characters)"
