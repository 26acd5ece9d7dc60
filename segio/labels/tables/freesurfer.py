"""FreeSurfer colour lookup tables (``FreeSurferColorLUT.txt``, ``.ctab``).

``index name R G B T [tissue]`` per line, where T is transparency (0 = opaque), read as
opacity ``(255 - T) / 255``; the optional tissue type is kept as the property
``freesurfer.tissue_type``. As FreeSurfer does, lines it cannot scan are skipped and the
first of a repeated index is kept (with one warning).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from pathlib import Path

from segio.errors import WriteError
from segio.labels.tables.common import (
    TABLE_LINE,
    Head,
    LabelEntry,
    alpha255,
    decode,
    rgb255,
    rgb_from_bytes,
    whole_number,
)


def sniff(head: bytes, name: str) -> float:
    """A line table with FreeSurfer's marks: a ``.ctab`` name, its comments, a tissue
    column, or a fifth number that is 0 on every row (transparency; Slicer's alpha would
    be 255). Below a Slicer header or a ``.ctbl`` name (see ``slicer_ctbl.sniff``)."""
    look = Head.of(head, name)
    rows = look.table_rows() if look.kind == "lines" else []
    if not rows:
        return 0.0
    comments = look.text.lower()
    fifth = [m.group(6) for m in rows if m.group(1) != "0"]
    marked = (
        look.suffix == ".ctab"
        or "freesurfer" in comments
        or "#no. label name" in comments
        or any(m.group(7) for m in rows)
        or bool(fifth and all(f == "0" for f in fifth))
    )
    return 0.7 if marked else 0.0


def read(data: bytes, src: str | None) -> list[LabelEntry]:
    entries: dict[int, LabelEntry] = {}
    twice: list[int] = []
    for line in decode(data).splitlines():
        match = TABLE_LINE.match(line)
        if match is None or match.group(6) is None:  # FreeSurfer ignores lines it cannot scan
            continue
        value = whole_number(match.group(1), "label index", src)
        r, g, b, t = (whole_number(match.group(i), "colour", src, 255) for i in range(3, 7))
        props = {"freesurfer.tissue_type": match.group(7)} if match.group(7) else {}
        if value in entries:
            twice.append(value)
        elif value > 0:
            color = rgb_from_bytes(r, g, b)
            entries[value] = LabelEntry(
                value, match.group(2), color, (255 - t) / 255, properties=props
            )
    if twice:  # one warning, however many lines repeat a label
        shown = ", ".join(map(str, twice[:5])) + (", ..." if len(twice) > 5 else "")
        warnings.warn(
            f"{src}: {len(twice)} label(s) listed twice ({shown}); keeping the first of each",
            stacklevel=3,
        )
    return list(entries.values())


def write(entries: Sequence[LabelEntry], path: Path) -> str:
    lines = [
        "# FreeSurfer colour lookup table, written by segio",
        "#No. Label Name  R G B T(=255-alpha)",
    ]
    for e in entries:
        if not e.name or re.search(r"\s", e.name):
            raise WriteError(f"FreeSurfer LUT names cannot be empty or hold spaces: {e.name!r}")
        tissue = e.properties.get("freesurfer.tissue_type", "")
        if tissue and not (tissue.isascii() and tissue.isdigit()):
            raise WriteError(f"FreeSurfer tissue type {tissue!r} is not an integer")
        r, g, b, t = (*rgb255(e), 255 - alpha255(e))
        lines.append(f"{e.value:<5d} {e.name:<40} {r:3d} {g:3d} {b:3d} {t:3d} {tissue}".rstrip())
    return "\n".join(lines) + "\n"
