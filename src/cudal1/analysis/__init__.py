"""Analysis: what a candidate does (technique tags), what each technique is worth (ablation,
statistics across the store) and how close it is to the hardware (roofline).

See docs/explain.md.
"""

from .ablation import AblationRow, Explanation, explain_candidate, rules_regenerator
from .roofline import Peaks, TaskWork, get_peaks, percent_of_roofline, plot_roofline, roofline_fraction, task_work
from .tags import TagHit, catalogue, find_tags, tag_candidate
from .techniques import TaggedResult, TechniqueStats, collect_results, technique_stats

__all__ = [
    "AblationRow", "Explanation", "Peaks", "TagHit", "TaggedResult", "TaskWork", "TechniqueStats", "catalogue",
    "collect_results", "explain_candidate", "find_tags", "get_peaks", "percent_of_roofline", "plot_roofline",
    "roofline_fraction", "rules_regenerator", "tag_candidate", "task_work", "technique_stats",
]
