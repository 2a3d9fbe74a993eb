"""Write docs/findings.md from the judge's catalogue (src/cudal1/judge/catalogue/patterns.yaml).

    python scripts/gen_findings_doc.py           # regenerate
    python scripts/gen_findings_doc.py --check   # exit 1 if docs/findings.md is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cudal1.judge.catalogue.docs import render_findings_doc

DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "findings.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the file is up to date")
    parser.add_argument("--out", type=Path, default=DOC_PATH, help=f"output file (default {DOC_PATH})")
    args = parser.parse_args(argv)
    text = render_findings_doc()
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date: run python scripts/gen_findings_doc.py", file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
