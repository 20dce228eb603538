"""Offline batch scoring: generate, chat, classify, perplexity and factuality over large
files, and OpenAI batch files, through the shared engine layer (docs/architecture.md)."""

from nlpforge.score.runner import ScoreJob, run_score

__all__ = ["ScoreJob", "run_score"]
