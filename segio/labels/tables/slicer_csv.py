"""3D Slicer's colour table as CSV or TSV (``.labels.csv``, ``.csv``, ``.tsv``).

One row per label with a ``LabelValue`` header: name, RGBA in 0..255 and the five
terminology codes as ``<Code>_CodingScheme/_CodeValue/_CodeMeaning`` columns. Columns
Slicer does not know are kept as properties. The context names are not stored, so
:class:`~segio.terminology.Terminology`'s defaults apply on reading.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from segio.errors import WriteError
from segio.labels.tables.common import (
    CODES,
    Head,
    LabelEntry,
    alpha255,
    check_unique,
    decode,
    fail,
    rgb255,
    rgb_from_bytes,
    whole_number,
)
from segio.terminology import Code, Terminology

_CSV_PARTS = ("_CodingScheme", "_CodeValue", "_CodeMeaning")
_CSV_COLUMNS = ["LabelValue", "Name", "Color_R", "Color_G", "Color_B", "Color_A"]
_CSV_COLUMNS += [prefix + part for _, prefix, _ in CODES for part in _CSV_PARTS]


def sniff(head: bytes, name: str) -> float:
    return 1.0 if Head.of(head, name).kind == "csv" else 0.0


def read(data: bytes, src: str | None) -> list[LabelEntry]:
    text = decode(data)
    first = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first and "," not in first else ","
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    except csv.Error as exc:
        raise fail(src, f"malformed CSV: {exc}") from exc
    if not rows:
        raise fail(src, "empty label table")
    header = [h.strip() for h in rows[0]]
    if "LabelValue" not in header:
        raise fail(src, "missing the required column LabelValue", "is this a Slicer colour CSV?")
    entries = []
    for row in rows[1:]:
        if not any(cell.strip() for cell in row):
            continue
        cells = dict(zip(header, (c.strip() for c in row), strict=False))
        value = whole_number(cells.get("LabelValue", ""), "LabelValue", src)
        if value != 0:
            entries.append(_entry(value, cells, src))
    return check_unique(entries, src)


def _entry(value: int, cells: dict[str, str], src: str | None) -> LabelEntry:
    rgb = [cells.get(f"Color_{c}", "") for c in "RGB"]
    color = (
        rgb_from_bytes(*(whole_number(c, "colour", src, 255) for c in rgb)) if all(rgb) else None
    )
    alpha = cells.get("Color_A", "")
    props = {k: v for k, v in cells.items() if k not in _CSV_COLUMNS and k and v}
    codes: list[Code | None] = []
    for _, prefix, _ in CODES:
        scheme, code_value, meaning = (cells.get(prefix + s, "") for s in _CSV_PARTS)
        codes.append(Code(scheme, code_value, meaning) if scheme and code_value else None)
    category, type_, modifier, region, region_modifier = codes
    term = None  # the context name is not stored: Terminology's defaults apply
    if category and type_:
        term = Terminology(category, type_, modifier, region, region_modifier if region else None)
    return LabelEntry(
        value,
        cells.get("Name", ""),
        color,
        whole_number(alpha, "Color_A", src, 255) / 255 if alpha else None,
        term,
        properties=props,
    )


def write(entries: Sequence[LabelEntry], path: Path) -> str:
    if any('"' in e.name for e in entries):
        raise WriteError('Slicer colour CSV values cannot contain " (a VTK limitation)')
    out = io.StringIO()
    # TSV when the name has a .tsv part, also for a staged temporary name (x.tsv.tmp)
    delimiter = "\t" if "tsv" in path.name.lower().split(".")[1:] else ","
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow(_CSV_COLUMNS)
    for e in entries:
        codes: list[str] = []
        for attr, _, _ in CODES:
            code = getattr(e.terminology, attr) if e.terminology else None
            codes += [code.scheme, code.value, code.meaning] if code else ["", "", ""]
        writer.writerow([e.value, e.name, *rgb255(e), alpha255(e), *codes])
    return out.getvalue()
