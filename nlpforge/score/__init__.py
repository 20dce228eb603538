"""Offline batch scoring: generate, chat, classify, perplexity and factuality over large
files, and OpenAI batch files, through the shared engine layer (DESIGN.md, contract 2)."""

from nlpforge.score.runner import ScoreJob, run_score

__all__ = ["ScoreJob", "run_score"]
