"""LLM policies: OpenAI-compatible and local transformers backends, versioned prompts, parsing.

``openai`` and ``transformers`` are optional (``pip install 'cudal1[llm]'``) and imported only
when a backend is built.
"""

from .backends import Completion, HFBackend, LLMUnavailable, OpenAIBackend, TokenBudget, make_backend
from .parse import ParsedResponse, parse_response
from .policy import LLMPolicy, LLMSample, SamplePlan
from .prompts import Prompt, feedback_from_verdict, render_search_prompt

__all__ = [
    "Completion", "HFBackend", "LLMPolicy", "LLMSample", "LLMUnavailable", "OpenAIBackend", "ParsedResponse",
    "Prompt", "SamplePlan", "TokenBudget", "feedback_from_verdict", "make_backend", "parse_response",
    "render_search_prompt",
]
