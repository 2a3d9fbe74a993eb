"""Regenerate the settings tables of the docs from the config fields (their help, defaults, flags):

    python -m cudal1.cli.config_docs           # rewrite the generated sections in docs/
    python -m cudal1.cli.config_docs --check   # exit 1 when a section differs from the code

Each generated section sits between ``<!-- generated: NAME ... -->`` and ``<!-- generated: end -->``;
tests/test_config_fields.py fails when one differs from what this module renders.
"""

from __future__ import annotations

import sys
from pathlib import Path


def _judge() -> str:
    from ..config_fields import markdown_table
    from ..judge.config import JudgeConfig
    from .cmd_eval import JUDGE_FLAGS

    return ("The flag column lists the settings `cudal1 eval` takes on its command line; the training "
            "configs set any of them under `judge.settings`.\n\n" + markdown_table(JudgeConfig, JUDGE_FLAGS))


def _search() -> str:
    from ..config_fields import markdown_table
    from ..search.options import SearchOptions
    from .cmd_optimize import LLM_FLAGS, LLM_SEARCH_FLAGS, SEARCH_FLAGS

    flags = SEARCH_FLAGS + LLM_SEARCH_FLAGS + tuple(f"llm.{n}" for n in LLM_FLAGS)
    return ("The flag column lists the options `cudal1 optimize` takes on its command line (`--device` and "
            "`--size` too, whose defaults there follow the device: see `cudal1 optimize --help`).\n\n" + markdown_table(SearchOptions, flags))


def _bench() -> str:
    from ..bench.runner import BenchOptions
    from ..config_fields import markdown_table
    from .cmd_bench import BENCH_FLAGS

    flags = BENCH_FLAGS + ("suite", "baselines", "ray")
    return ("The flag column lists the options `cudal1 bench` takes on its command line (`--device` and "
            "`--size` too, whose defaults there follow the device: see `cudal1 bench --help`).\n\n" + markdown_table(BenchOptions, flags))


def _training() -> str:
    from ..train.config import config_markdown

    return config_markdown().rstrip()


# (docs file, section name) -> renderer
SECTIONS = {
    ("docs/judge.md", "judge-settings"): _judge,
    ("docs/optimizer.md", "search-options"): _search,
    ("docs/bench.md", "bench-options"): _bench,
    ("docs/training.md", "training-configs"): _training,
}


def begin_marker(name: str) -> str:
    return f"<!-- generated: {name} (python -m cudal1.cli.config_docs) -->"


END = "<!-- generated: end -->"


def render_section(text: str, name: str, body: str) -> str:
    """``text`` with the section ``name`` replaced by ``body``; ValueError when its markers are missing."""
    begin = begin_marker(name)
    head, found, rest = text.partition(begin)
    if not found or END not in rest:
        raise ValueError(f"the markers {begin} ... {END} are missing")
    _, _, tail = rest.partition(END)
    return f"{head}{begin}\n\n{body}\n\n{END}{tail}"


def stale_sections(root: Path) -> list[str]:
    """'FILE: NAME' for every generated section that differs from the code (or lacks its markers)."""
    stale = []
    for (doc, name), render in SECTIONS.items():
        text = (root / doc).read_text(encoding="utf-8")
        try:
            if render_section(text, name, render()) != text:
                stale.append(f"{doc}: {name}")
        except ValueError as e:
            stale.append(f"{doc}: {name}: {e}")
    return stale


def main(argv: list[str]) -> int:
    root = Path.cwd()
    if "--check" in argv:
        stale = stale_sections(root)
        for s in stale:
            sys.stderr.write(f"stale: {s}\n")
        return 1 if stale else 0
    for (doc, name), render in SECTIONS.items():
        path = root / doc
        path.write_text(render_section(path.read_text(encoding="utf-8"), name, render()), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
