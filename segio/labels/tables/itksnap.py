"""ITK-SNAP label description files (``.label``, ``.txt``): ``IDX R G B A VIS MSH "LABEL"``.

Alpha is an opacity in 0..1; the visibility and mesh flags are kept as the properties
``itksnap.visible`` and ``itksnap.mesh``. Index 0 is ITK-SNAP's fixed "Clear Label" and
never an entry.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from segio.errors import WriteError
from segio.labels.tables.common import (
    Head,
    LabelEntry,
    check_unique,
    data_lines,
    decode,
    fail,
    rgb255,
    rgb_from_bytes,
    unit,
    whole_number,
)

# IDX R G B A VIS MSH "LABEL" (the label runs to the next quote).
_LINE = re.compile(r"\s*(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+\"([^\"]*)")
_HEADER = [
    "################################################",
    "# ITK-SnAP Label Description File",
    '# File format: IDX R G B A VIS MSH "LABEL"',
    "#   R, G, B: 0..255; A: opacity 0..1; VIS, MSH: 0 or 1",
    "# Written by segio",
    "################################################",
    '    0     0    0    0        0  0  0    "Clear Label"',
]


def sniff(head: bytes, name: str) -> float:
    """ITK-SNAP's own comment line, else every line in its eight-field layout."""
    look = Head.of(head, name)
    if look.kind != "lines":
        return 0.0
    if "itk-snap label description" in look.text[:1024].lower():
        return 1.0
    lines = look.lines()
    return 0.9 if lines and all(_LINE.match(ln) for ln in lines) else 0.0


def read(data: bytes, src: str | None) -> list[LabelEntry]:
    entries = []
    for line in data_lines(decode(data)):
        match = _LINE.match(line)
        if match is None:
            raise fail(src, f'ITK-SNAP line {line.strip()!r} is not IDX R G B A VIS MSH "LABEL"')
        idx, r, g, b, alpha, vis, msh, name = match.groups()
        value = whole_number(idx, "label index", src)
        rgb = [whole_number(c, "colour", src, 255) for c in (r, g, b)]
        props = {
            "itksnap.visible": str(whole_number(vis, "VIS", src, 1)),
            "itksnap.mesh": str(whole_number(msh, "MSH", src, 1)),
        }
        opacity = unit(alpha, "alpha", src)
        if value > 0:  # index 0 is ITK-SNAP's fixed "Clear Label"
            entries.append(LabelEntry(value, name, rgb_from_bytes(*rgb), opacity, properties=props))
    return check_unique(entries, src)


def write(entries: Sequence[LabelEntry], path: Path) -> str:
    lines = list(_HEADER)
    for e in entries:
        if '"' in e.name:
            raise WriteError(f'name {e.name!r} contains ", which ITK-SNAP label files cannot hold')
        flags = [e.properties.get(f"itksnap.{k}", "1") for k in ("visible", "mesh")]
        if any(f not in ("0", "1") for f in flags):
            raise WriteError(f"ITK-SNAP visibility flags of label {e.value} must be 0 or 1")
        alpha = format(round(1.0 if e.opacity is None else e.opacity, 3), "g")
        r, g, b = rgb255(e)
        vis, msh = flags
        lines.append(
            f'{e.value:5d} {r:5d} {g:4d} {b:4d} {alpha:>8} {vis:>2} {msh:>2}    "{e.name}"'
        )
    return "\n".join(lines) + "\n"
