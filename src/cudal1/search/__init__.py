"""search layer (see DESIGN.md): optimize loops (LLM-free and LLM), prompts, exemplar sampling."""

from .optimize import OptimizeResult, TriedCandidate, optimize, write_outputs
from .options import LLMOptions, SearchOptions

__all__ = ["LLMOptions", "OptimizeResult", "SearchOptions", "TriedCandidate", "optimize", "write_outputs"]
