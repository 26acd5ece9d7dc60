"""Rows of numbers for the shell: one table on a terminal, ``--csv`` or ``--json`` for programs.

``segio stats``, ``segio compare`` and ``convert --report`` print per-segment rows; this
module prints them the same way. A row is a plain dictionary (JSON-ready); a
:class:`Column` says which key to show under which header and how to format it. The JSON
output is the rows themselves, every key, so programs see more than the table shows; CSV
holds the columns of the table, numbers in full precision. rich is imported only for a
table on a terminal.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from segio.cli import printable

Output = Literal["table", "csv", "json"]


@dataclass(frozen=True)
class Column:
    """One column: the row key, its header, and how a value is shown in the table."""

    key: str
    header: str
    show: Callable[[Any], str] = str
    right: bool = True


def number(digits: int = 4) -> Callable[[Any], str]:
    """A formatter of numbers with ``digits`` significant digits (``None`` shows empty)."""

    def show(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, float) and math.isinf(value):
            return "inf"
        if isinstance(value, list | tuple):
            return "(" + ", ".join(f"{float(v):.{digits}g}" for v in value) + ")"
        return f"{float(value):.{digits}g}"

    return show


def emit(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[Column],
    output: Output,
    *,
    title: str = "",
    document: Mapping[str, Any] | None = None,
) -> None:
    """Print ``rows`` as ``output``. ``document`` is the JSON printed instead of the bare
    rows when given (the rows inside it, with what else the command knows)."""
    if output == "json":
        sys.stdout.write(
            json.dumps(document if document is not None else list(rows), indent=2) + "\n"
        )
    elif output == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([c.key for c in columns])
        for row in rows:
            writer.writerow([_csv_cell(row.get(c.key)) for c in columns])
    else:
        _table(rows, columns, title)


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return " ".join(repr(v) if isinstance(v, float) else str(v) for v in value)
    return repr(value) if isinstance(value, float) else str(value)


def _table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], title: str) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console() if sys.stdout.isatty() else Console(width=250)
    table = Table(title=Text(printable(title)) if title else None, title_justify="left")
    for column in columns:
        table.add_column(column.header, justify="right" if column.right else "left")
    for row in rows:
        cells = ("" if row.get(c.key) is None else c.show(row[c.key]) for c in columns)
        table.add_row(*(Text(printable(cell)) for cell in cells))
    console.print(table)
