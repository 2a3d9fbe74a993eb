"""The LLM-free optimizer: sound graph rewrites, generated kernels, CUDA graphs, torch.compile.

``RulesPolicy().propose(task, context)`` returns complete ``ModelNew`` candidates; only the
judge says whether they are correct and faster. See docs/optimizer.md.
"""

from .ordering import PRIOR, StrategyStats
from .policy import Plan, RulesPolicy

__all__ = ["PRIOR", "Plan", "RulesPolicy", "StrategyStats"]
