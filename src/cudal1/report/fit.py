"""`FitTable`: a rich table that fits the console's width (80 columns when output is piped)
without cutting ids or numbers. Only rich is imported, so CLI modules may import it at load."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace

from rich.measure import Measurement
from rich.table import Table

WRAP_MIN = 8  # a column that wraps is not narrowed below this (or its longest word, when shorter)


class FitTable(Table):
    """A `rich.table.Table` that keeps within the console's width without cutting a word.

    Columns added with ``no_wrap=True`` (ids, numbers, verdicts) keep their whole width; the
    others wrap, folding a word longer than the column onto the next line. When the console is
    narrower than the table needs (80 columns when output is piped): first the outer border goes,
    then the columns whose headers are in ``optional`` are left out, least important first, and
    the caption names them; only then does the first column (the ids) fold onto a second line,
    still whole.
    """

    def __init__(self, *args, optional: Sequence[str] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.optional = tuple(optional)

    def __rich_console__(self, console, options):
        yield from Table.__rich_console__(self.fit(console, options), console, options)

    def fit(self, console, options) -> Table:
        """A copy laid out for ``options.max_width`` (see the class doc); this table is unchanged."""
        width = options.max_width
        t = copy.copy(self)
        t.columns = [replace(c) if c.no_wrap else replace(c, overflow="fold") for c in self.columns]
        wide = options.update_width(1 << 16)
        need = {id(c): _column_need(console, wide, c) for c in t.columns}
        if _table_need(t, need) > width:
            t.show_edge, t.pad_edge = False, False
        left_out = []
        for header in self.optional:
            if _table_need(t, need) <= width:
                break
            kept = [c for c in t.columns if c.header != header]
            if len(kept) < len(t.columns):
                t.columns = kept
                left_out.append(str(header).replace("\n", " "))
        if _table_need(t, need) > width and t.columns:
            first = t.columns[0]
            need[id(first)] = 0
            first.no_wrap, first.overflow = False, "fold"
            first.width = max(WRAP_MIN, width - _table_need(t, need))
        for i, c in enumerate(t.columns):
            c._index = i
        if left_out:
            note = f"not shown at {width} columns: {', '.join(left_out)} (a wider terminal or --json has them)"
            if not t.caption:
                t.caption_justify = "left"
            t.caption = f"{t.caption}\n{note}" if t.caption else note
        return t


def _column_need(console, options, column) -> int:
    """Cells a column needs: its widest line when it does not wrap, else its longest word (at most
    `WRAP_MIN`)."""
    sizes = [Measurement.get(console, options, cell) for cell in (column.header, *column.cells)]
    if column.no_wrap:
        return max(m.maximum for m in sizes)
    return min(max(m.minimum for m in sizes), WRAP_MIN)


def _table_need(t: Table, need: dict[int, int]) -> int:
    """The table's width with every column at its need: cells, padding and borders."""
    _, right, _, left = t.padding
    n = len(t.columns)
    padding = n * (left + right) - (0 if t.pad_edge or not n else left + right)
    borders = (n - 1 + (2 if t.show_edge else 0)) if t.box and n else 0
    return sum(need[id(c)] for c in t.columns) + padding + borders


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 accepted candidate``, ``2 accepted candidates``."""
    return f"{n} {word if n == 1 else many or word + 's'}"
