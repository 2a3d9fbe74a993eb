"""The technique catalogue (``tags.yaml``): one entry per technique tag, plus the data the
detectors use (operations to ignore, equivalent operations, kernel-name patterns)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

CATALOGUE_PATH = Path(__file__).with_name("tags.yaml")


# --- the catalogue --------------------------------------------------------------------------
@dataclass(frozen=True)
class TagDef:
    """One technique of the catalogue (``tags.yaml``)."""

    id: str
    name: str
    summary: str
    why: str
    source: str
    run: str
    example: str


@dataclass(frozen=True)
class Catalogue:
    tags: tuple[TagDef, ...]
    ignore_ops: frozenset[str]
    equivalent_ops: tuple[frozenset[str], ...]
    op_hints: dict
    inductor_kernel_re: re.Pattern
    lower_precision_kernel_re: re.Pattern
    lower_precision_findings: frozenset[str]

    def ids(self) -> list[str]:
        return [t.id for t in self.tags]

    def get(self, tag_id: str) -> TagDef:
        for t in self.tags:
            if t.id == tag_id:
                return t
        raise KeyError(f"unknown technique tag {tag_id!r}; known: {', '.join(self.ids())}")


@lru_cache(maxsize=1)
def catalogue() -> Catalogue:
    d = yaml.safe_load(CATALOGUE_PATH.read_text(encoding="utf-8"))
    return Catalogue(
        tags=tuple(TagDef(**t) for t in d["tags"]),
        ignore_ops=frozenset(d["ignore_ops"]),
        equivalent_ops=tuple(frozenset(g) for g in d["equivalent_ops"]),
        op_hints={k: tuple(v) for k, v in d["op_hints"].items()},
        inductor_kernel_re=re.compile(d["inductor_kernel_re"], re.I),
        lower_precision_kernel_re=re.compile(d["lower_precision_kernel_re"], re.I),
        lower_precision_findings=frozenset(d["lower_precision_findings"]),
    )


@dataclass(frozen=True)
class TagHit:
    """A tag found on a candidate: where the evidence came from (``source`` or ``run``) and what it was."""

    id: str
    origin: str
    evidence: tuple[str, ...]

    def to_json(self) -> dict:
        return {"id": self.id, "origin": self.origin, "evidence": list(self.evidence)}


