"""``POST /v1/classify`` (vLLM's and SGLang's shape, nlpforge's extras as extra fields)."""

from __future__ import annotations

import time
from typing import Literal

from pydantic import BaseModel, Field

from nlpforge.serve.protocol.common import Loose, Usage


class ClassifyRequest(Loose):
    model: str | None = None
    input: str | list[str]
    threshold: float | None = Field(None, ge=0, le=1, description="nlpforge extra: override the bundle's decision threshold")


class ClassifyItem(BaseModel):
    index: int
    label: str | list[str] | None = Field(description="argmax label; with multi-label or a threshold, the labels at or above it")
    probs: list[float]
    num_classes: int
    labels: list[str] = Field(description="nlpforge extra: the label of each entry of probs")
    threshold: float | None = Field(None, description="nlpforge extra: the decision threshold applied, if any")


class ClassifyResponse(BaseModel):
    id: str
    object: Literal["list"] = "list"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    data: list[ClassifyItem]
    usage: Usage
