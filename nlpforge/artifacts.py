"""The JSON artifacts stages hand to each other, as pydantic models with one ``read`` and one
``write`` each: the bundle's ``nlpforge.json``, ``prepare/meta.json``, ``eval/results.json``
and the run's ``manifest.json``. Every reader goes through these, so a broken or foreign
file is one clear error (file, what is wrong, what is valid) instead of a KeyError later.

Each carries ``schema_version``. Files written before it existed are version 1 (the shape
has not changed since); a file from a newer nlpforge is refused with the version it needs.
Unknown keys are kept (``extra="allow"``): a newer minor release may add fields.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from nlpforge.atomic import atomic_write_json
from nlpforge.errors import StageError

SCHEMA_VERSION = 1


class ArtifactError(StageError):
    """An artifact file is missing, unreadable, or not in the shape nlpforge writes."""


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(x) for x in e['loc']) or '(top level)'}: {e['msg']}" for e in exc.errors()[:5])


class Artifact(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())
    FILE: ClassVar[str]
    WHAT: ClassVar[str]

    schema_version: int = Field(SCHEMA_VERSION, ge=1)

    @classmethod
    def path_in(cls, folder: Path) -> Path:
        return Path(folder) / cls.FILE

    @classmethod
    def read(cls, path: Path) -> Self:
        """From the file itself or the folder that holds it."""
        path = Path(path)
        if path.is_dir():
            path = cls.path_in(path)
        if not path.is_file():
            raise ArtifactError(f"{path}: missing ({cls.WHAT})")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ArtifactError(f"{path}: not valid JSON ({exc}); {cls.WHAT} is a JSON object written by nlpforge") from None
        if not isinstance(data, dict):
            raise ArtifactError(f"{path}: expected a JSON object ({cls.WHAT}), got {type(data).__name__}")
        version = data.get("schema_version", 1)
        if isinstance(version, int) and version > SCHEMA_VERSION:
            raise ArtifactError(f"{path}: written by a newer nlpforge (schema_version {version}; this one reads up to {SCHEMA_VERSION}); upgrade nlpforge")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ArtifactError(f"{path}: not a valid {cls.WHAT}: {_problems(exc)}") from None

    def write(self, path: Path) -> Path:
        """To the file, or into the folder under the artifact's own name (atomically)."""
        path = Path(path)
        if path.is_dir() or not path.suffix:
            path = self.path_in(path)
        atomic_write_json(path, self.model_dump(mode="json", exclude_none=False))
        return path


# --- the bundle: nlpforge.json --------------------------------------------------------------


class ServeFlags(BaseModel):
    model_config = ConfigDict(extra="allow")
    engine: str = "vllm"
    vllm_args: list[str] = []


class BundleMeta(Artifact):
    """What a bundle says about itself beyond the HF files: task, stop tokens, labels and
    decision threshold, the serve flags, the eval summary and the lineage."""

    FILE = "nlpforge.json"
    WHAT = "nlpforge bundle metadata (nlpforge.json)"

    name: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    task: Literal["chat", "classification"] = "chat"
    created: str | None = None
    nlpforge_version: str | None = None
    base_model: str | None = None
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    merged: bool = True
    base_weights: str = "original"  # "nf4-dequantized" for QLoRA
    end_of_turn_token: str | None = None
    stop_token_ids: list[int] = []
    max_model_len: int | None = Field(None, gt=0)
    max_length: int | None = Field(None, gt=0)  # classification: the longest input in tokens
    merge_max_abs_diff: float | None = None
    contract: dict[str, Any] | None = None  # the export check's record
    serve: ServeFlags = ServeFlags()
    eval: dict[str, Any] = {}
    lineage: dict[str, Any] = {}
    labels: list[str] = []
    multi_label: bool = False
    threshold: float | None = Field(None, ge=0, le=1)
    adapters: dict[str, str] = {}  # served name -> folder inside the bundle
    max_lora_rank: int | None = Field(None, ge=1)
    adapter_info: dict[str, Any] = {}
    trust_remote_code: bool = False

    @field_validator("adapters")
    @classmethod
    def _inside_bundle(cls, v: dict[str, str]) -> dict[str, str]:
        for name, rel in v.items():
            p = PurePosixPath(rel)
            if p.is_absolute() or ".." in p.parts:
                raise ValueError(f"adapter {name!r} points outside the bundle ({rel!r}); adapter folders are relative paths inside it")
        return v


# --- prepare/meta.json ----------------------------------------------------------------------


class PrepareMeta(Artifact):
    """What train, eval and export need from prepare: the task, the token roles of chat runs
    (end of turn, eos, pad, template) and the label map of classification runs."""

    FILE = "meta.json"
    WHAT = "prepare metadata (prepare/meta.json)"

    task: Literal["sft", "classification", "dpo", "kto"]
    format: str
    rows: dict[str, int] = {}
    tokens: dict[str, int] = {}
    loss_tokens: dict[str, int] = {}
    rejected_too_long: int = 0
    end_of_turn_token: str | None = None
    end_of_turn_id: int | None = None
    eos_token: str | None = None
    eos_token_id: int | None = None
    pad_token: str | None = None
    pad_token_id: int | None = None
    chat_template: str | None = None
    labels: list[str] = []
    multi_label: bool = False
    label_counts: dict[str, int] = {}
    truncated: int = 0
    streaming_corpus: str | None = None  # data.streaming: the corpus training reads (relative to this folder); no train split was written
    streaming_rows: int | None = None  # ... and how many of its rows train (weights applied)

    @property
    def train_rows(self) -> int:
        return self.streaming_rows if self.streaming_corpus else self.rows.get("train", 0)

    @property
    def stop_ids(self) -> list[int]:
        """The ids a chat model must stop on: the end-of-turn token, then eos."""
        return list(dict.fromkeys(i for i in (self.end_of_turn_id, self.eos_token_id) if i is not None))


# --- eval/results.json ----------------------------------------------------------------------


class GateRow(BaseModel):
    metric: str
    rule: Literal["min", "max", "max_increase", "max_decrease"]
    bound: float
    value: float
    passed: bool


class EvalResults(Artifact):
    """The eval stage's numbers. Chat runs: ``base``/``tuned``/``delta`` metric maps; classification
    runs also ``metrics``, ``majority``, ``labels``, ``threshold`` and ``fairness`` (extra keys)."""

    FILE = "results.json"
    WHAT = "eval results (eval/results.json)"

    task: Literal["chat", "classification"] = "chat"
    base: dict[str, Any] | None = None
    tuned: dict[str, Any] = {}
    delta: dict[str, Any] | None = None
    gates: list[GateRow] = []
    passed: bool = True

    def summary(self) -> dict[str, Any]:
        """What a bundle records of its eval."""
        keep = ("base", "tuned", "delta") if self.task == "chat" else ("metrics", "majority")
        dump = self.model_dump(mode="json")
        return {k: dump[k] for k in keep if dump.get(k) is not None}


# --- manifest.json ----------------------------------------------------------------------------


class StageEntry(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: Literal["running", "completed", "failed"] | None = None
    fingerprint: str | None = None
    started: str | None = None
    finished: str | None = None
    seconds: float | None = None
    inputs: dict[str, str] = {}
    outputs: dict[str, str] = {}
    summary: dict[str, Any] = {}
    error: str | None = None


class RecipeRecord(BaseModel):
    model_config = ConfigDict(extra="allow")
    path: str | None = None
    sha256: str | None = None
    resolved: dict[str, Any] = {}


class Manifest(Artifact):
    """A run's books: the resolved recipe, raw-input hashes, package versions, seed, and per
    stage its status, fingerprint, input and output hashes and summary (the stage cache)."""

    FILE = "manifest.json"
    WHAT = "run manifest (manifest.json)"

    nlpforge_version: str | None = None
    created: str | None = None
    updated: str | None = None
    recipe: RecipeRecord = RecipeRecord()
    seed: int | None = None
    packages: dict[str, str] = {}
    inputs: dict[str, str] = {}
    stages: dict[str, StageEntry] = {}
    tracking: dict[str, str] = {}  # e.g. the MLflow run id of the latest `nlpforge run`
    improve: dict[str, Any] = {}  # `nlpforge improve`: the production version, the feedback rows that went in, the comparison

    def lineage(self, seed: int, packages: dict[str, str]) -> dict[str, Any]:
        """What a bundle came from: recipe hash, raw inputs, every stage's output hashes, seed and
        package versions (written into every bundle's nlpforge.json)."""
        return {
            "recipe_sha256": self.recipe.sha256,
            "inputs": dict(self.inputs),
            "stages": {s: dict(e.outputs) for s, e in self.stages.items()},
            "seed": seed,
            "packages": packages,
        }
