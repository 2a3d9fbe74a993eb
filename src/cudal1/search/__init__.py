"""search layer (see DESIGN.md): optimize loops (LLM-free and LLM), prompts, exemplar sampling."""

from ..store.records import Attempt
from .judging import Recording, judge_and_store
from .optimize import OptimizeResult, optimize, write_outputs
from .options import LLMOptions, SearchOptions

__all__ = ["Attempt", "LLMOptions", "OptimizeResult", "Recording", "SearchOptions", "judge_and_store", "optimize",
           "write_outputs"]
