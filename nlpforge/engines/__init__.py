"""ONE inference layer shared by eval, batch scoring and serving (DESIGN.md, contract 2)."""

from nlpforge.engines.base import Completion, Engine

__all__ = ["Completion", "Engine"]
