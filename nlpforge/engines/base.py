"""The engine interface: chat generation and token log-likelihoods over rendered ids."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass
class Completion:
    text: str
    token_ids: list[int]
    finish_reason: str  # "stop": ended on a stop token; "length": hit max_new_tokens


class Engine(Protocol):
    def chat(self, conversations: list[list[dict]], max_new_tokens: int) -> list[Completion]:
        """Greedy continuation of each conversation's generation prompt."""
        ...

    def nll(self, rows: list[dict]) -> tuple[float, int]:
        """Summed negative log-likelihood over the tokens whose label is not -100, and their count."""
        ...
