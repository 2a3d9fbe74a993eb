"""Reading an LLM answer: the three sections and the final ``ModelNew`` code block.

A response is *malformed* when nothing judgeable can be taken from it: no response, no code
block, no code block defining ``class ModelNew``, or the answer was cut off inside its code
block. A malformed response is not sent to the judge (verdicts only come from the judge); the
search loop stores it as a candidate whose meta carries ``{"failure": reason}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

SECTIONS = ("analysis", "design", "code")
_SECTION_PATTERNS = {
    "analysis": re.compile(r"performance\s+analysis", re.I),
    "design": re.compile(r"algorithm\s+design", re.I),
    "code": re.compile(r"code\s+implementation", re.I),
}
# A heading line: markdown '#', a bold line, or a numbered line ("1. Performance Analysis:").
_HEADING = re.compile(r"^\s{0,3}(?:#{1,6}\s*|\*\*|\d+[.)]\s*(?:\*\*)?)?(?P<title>[^\n]{0,80}?)(?:\*\*)?\s*:?\s*$")
_FENCE = re.compile(r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[\w+.#-]*)[^\n]*$", re.M)
_MODELNEW = re.compile(r"^\s*class\s+ModelNew\s*[(:]", re.M)
PYTHON_LANGS = ("", "python", "py", "python3")


@dataclass(frozen=True)
class CodeBlock:
    lang: str
    code: str
    closed: bool


@dataclass(frozen=True)
class ParsedResponse:
    """``source`` is the code to judge ('' when malformed); ``failure`` says why it is malformed."""

    source: str
    analysis: str = ""
    design: str = ""
    blocks: tuple[CodeBlock, ...] = ()
    failure: str | None = None
    missing_sections: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.failure is None


def code_blocks(text: str) -> list[CodeBlock]:
    """Fenced blocks in order; the last one is ``closed=False`` when the text ends inside it."""
    blocks: list[CodeBlock] = []
    pos = 0
    while True:
        m = _FENCE.search(text, pos)
        if not m:
            return blocks
        fence, lang = m.group("fence"), m.group("lang").lower()
        body_start = m.end() + 1
        close = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$", re.M)
        c = close.search(text, body_start)
        if not c:
            blocks.append(CodeBlock(lang, text[body_start:], closed=False))
            return blocks
        blocks.append(CodeBlock(lang, text[body_start:c.start()].rstrip("\n") + "\n", closed=True))
        pos = c.end()


def _prose(text: str) -> str:
    """The text with code blocks removed (so headings inside code are not taken as sections)."""
    out, pos = [], 0
    while True:
        m = _FENCE.search(text, pos)
        if not m:
            out.append(text[pos:])
            return "".join(out)
        out.append(text[pos:m.start()])
        close = re.compile(rf"^[ \t]*{re.escape(m.group('fence')[0])}{{{len(m.group('fence'))},}}[ \t]*$", re.M)
        c = close.search(text, m.end() + 1)
        if not c:
            return "".join(out)
        pos = c.end()


def sections(text: str) -> dict[str, str]:
    """The body of each of the three sections found (by heading), keyed analysis/design/code."""
    prose = _prose(text)
    marks: list[tuple[int, int, str]] = []  # (heading start, body start, name)
    offset = 0
    for line in prose.splitlines(keepends=True):
        stripped = line.strip()
        if stripped and len(stripped) <= 90:
            h = _HEADING.match(stripped)
            title = h.group("title") if h else ""
            for name, pat in _SECTION_PATTERNS.items():
                if pat.search(title) and not any(n == name for _, _, n in marks):
                    marks.append((offset, offset + len(line), name))
                    break
        offset += len(line)
    found: dict[str, str] = {}
    for i, (_, body, name) in enumerate(marks):
        end = marks[i + 1][0] if i + 1 < len(marks) else len(prose)
        found[name] = prose[body:end].strip()
    return found


def parse_response(text: str | None, finish_reason: str | None = None) -> ParsedResponse:
    """Take the last complete Python block that defines ``class ModelNew`` as the candidate."""
    if not text or not text.strip():
        return ParsedResponse(source="", failure="empty response")
    blocks = code_blocks(text)
    secs = sections(text)
    missing = tuple(s for s in SECTIONS if s not in secs)
    common = dict(analysis=secs.get("analysis", ""), design=secs.get("design", ""), blocks=tuple(blocks), missing_sections=missing)
    python = [b for b in blocks if b.lang in PYTHON_LANGS]
    with_model = [b for b in python if _MODELNEW.search(b.code)]
    if with_model and with_model[-1].closed:
        return ParsedResponse(source=with_model[-1].code, **common)
    cut = " (the response hit the token limit)" if finish_reason == "length" else ""
    if with_model:  # the last ModelNew block never closed
        return ParsedResponse(source=with_model[-1].code, failure=f"truncated: the answer ends inside its code block{cut}", **common)
    if not blocks:
        if finish_reason == "length":
            return ParsedResponse(source="", failure=f"truncated before any code block{cut}", **common)
        return ParsedResponse(source="", failure="no code block in the response", **common)
    if not python:
        langs = ", ".join(sorted({b.lang for b in blocks}))
        return ParsedResponse(source="", failure=f"no python code block (found only: {langs})", **common)
    if blocks and not blocks[-1].closed:
        return ParsedResponse(source="", failure=f"truncated: the answer ends inside a code block{cut}", **common)
    return ParsedResponse(source="", failure="no code block defines class ModelNew", **common)
