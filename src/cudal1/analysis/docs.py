"""Regenerate the technique catalogue section of docs/explain.md from tags.yaml:

    python -m cudal1.analysis.docs [docs/explain.md]
"""

from __future__ import annotations

import sys
from pathlib import Path

from .tags import catalogue_markdown

BEGIN = "<!-- techniques:begin (generated from src/cudal1/analysis/tags.yaml) -->"
END = "<!-- techniques:end -->"


def render(text: str) -> str:
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n\n{catalogue_markdown()}\n{END}{tail}"


def main(argv: list[str]) -> int:
    path = Path(argv[0] if argv else "docs/explain.md")
    text = path.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        sys.stderr.write(f"{path} lacks the markers {BEGIN} ... {END}\n")
        return 2
    path.write_text(render(text), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
