"""3D Slicer's colour table file (``.ctbl``): ``index name R G B A`` per line.

Names cannot hold spaces, so Slicer writes ``_`` for each and this reader reads every
``_`` back as a space (``_`` alone is an empty name). Slicer holds the table as a dense
lookup table, so an index above :data:`CTBL_MAX` is refused on writing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from segio.errors import WriteError
from segio.labels.tables.common import (
    Head,
    LabelEntry,
    alpha255,
    check_unique,
    data_lines,
    decode,
    fail,
    rgb255,
    rgb_from_bytes,
    whole_number,
)

#: The largest index of a Slicer colour table: Slicer holds it as a dense lookup table.
CTBL_MAX = 1_000_000
_HEADERS = ("# Color table file", "# Color procedural file")


def sniff(head: bytes, name: str) -> float:
    """Slicer's header line says so; otherwise any ``index name R G B ...`` table, more
    surely with a ``.ctbl`` name (FreeSurfer's sniffer claims the ones with its marks)."""
    look = Head.of(head, name)
    if look.kind != "lines":
        return 0.0
    if look.text.startswith(_HEADERS):
        return 0.95
    if not look.table_rows():
        return 0.0
    return 0.9 if look.suffix == ".ctbl" else 0.5


def read(data: bytes, src: str | None) -> list[LabelEntry]:
    text = decode(data)
    if text.lstrip().startswith("# Color procedural file"):
        raise fail(
            src,
            "this is a Slicer procedural (continuous) colour file, not a label table",
            "export the discrete colour table (.ctbl or .csv) instead",
        )
    entries = []
    for line in data_lines(text):
        fields = line.split()
        if len(fields) < 5:
            raise fail(src, f"colour table line {line.strip()!r} needs index name R G B [A]")
        value = whole_number(fields[0], "colour index", src, CTBL_MAX)
        r, g, b, *rest = (whole_number(f, "colour", src, 255) for f in fields[2:6])
        name = fields[1].strip('"')
        if value > 0:
            name = "" if name == "_" else name.replace("_", " ")
            alpha = rest[0] / 255 if rest else None
            entries.append(LabelEntry(value, name, rgb_from_bytes(r, g, b), alpha))
    return check_unique(entries, src)


def write(entries: Sequence[LabelEntry], path: Path) -> str:
    lines = ["# Color table file written by segio", f"# {len(entries)} values"]
    for e in entries:
        if e.value > CTBL_MAX:
            raise WriteError(
                f"label {e.value} is above {CTBL_MAX}, the largest index of a Slicer colour table",
                hint="use sidecar=segio-json or slicer-csv",
            )
        if re.search(r'[^\S ]|"', e.name):
            raise WriteError(f"name {e.name!r} has a tab or quote, which a .ctbl cannot hold")
        name = e.name.replace(" ", "_") or "_"
        lines.append(" ".join(map(str, (e.value, name, *rgb255(e), alpha255(e)))))
    return "\n".join(lines) + "\n"
