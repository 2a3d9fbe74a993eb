"""Policies: who proposes candidates (the LLM-free optimizer, LLM backends)."""

from .base import Attempt, Context, Policy, Proposal

__all__ = ["Attempt", "Context", "Policy", "Proposal"]
