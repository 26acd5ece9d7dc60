"""TotalSegmentator's label table: a Caret/CIFTI ``<LabelTable>`` XML, which it stores in
a NIfTI header extension (the NIfTI plugin reads and writes it there with
:func:`parse_caret_xml` and :func:`caret_xml`); also readable as a ``.xml`` file.

Key 0 is background. Anything from the first NUL on is extension padding. A DOCTYPE or
entity declaration is refused, so no XML bomb or external entity is ever expanded.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import quoteattr

from segio.errors import WriteError
from segio.labels.tables.common import (
    Head,
    LabelEntry,
    check_unique,
    color3,
    fail,
    fallback_color,
    prepare,
    unit,
    whole_number,
)

NAME = "caret-xml"


def sniff(head: bytes, name: str) -> float:
    look = Head.of(head, name)
    marked = "<CaretExtension" in look.text or "<LabelTable" in look.text
    return 1.0 if look.kind == "xml" and marked else 0.0


def parse_caret_xml(xml: bytes) -> list[LabelEntry]:
    """Read the Caret/CIFTI ``<LabelTable>`` TotalSegmentator puts in a NIfTI extension."""
    return read(xml, None)


def read(data: bytes, src: str | None) -> list[LabelEntry]:
    data = data.split(b"\x00", 1)[0].strip()
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise fail(src, "label table XML must not declare a DOCTYPE or entities")
    try:
        root = ET.fromstring(data)
    except (ET.ParseError, ValueError, LookupError) as exc:
        raise fail(src, f"not well-formed XML: {exc}") from exc
    if root.tag not in ("CaretExtension", "LabelTable") and root.find(".//LabelTable") is None:
        raise fail(src, "no Caret <LabelTable> in this XML")
    entries = []
    for label in root.iter("Label"):
        value = whole_number(label.get("Key", ""), "label Key", src)
        rgb = color3([label.get(c, "") for c in ("Red", "Green", "Blue")], "colour", src)
        alpha = label.get("Alpha")
        if value > 0:
            opacity = None if alpha is None else unit(alpha, "Alpha", src)
            entries.append(LabelEntry(value, (label.text or "").strip(), rgb, opacity))
    return check_unique(entries, src)


def caret_xml(entries: Sequence[LabelEntry]) -> bytes:
    """Serialise as TotalSegmentator's Caret XML label table (no NUL padding added)."""
    return write(prepare(entries, NAME, layers=False), None)


def write(entries: Sequence[LabelEntry], path: Path | None) -> bytes:
    lines = [
        "<?xml version='1.0' encoding='UTF-8'?>",
        "<CaretExtension>",
        '  <VolumeInformation Index="0">',
        "    <LabelTable>",
    ]
    for e in entries:
        if re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", e.name):
            raise WriteError(f"name {e.name!r} has control characters, which XML cannot hold")
        red, green, blue = (quoteattr(repr(float(c))) for c in (e.color or fallback_color(e.value)))
        alpha = quoteattr(repr(1.0 if e.opacity is None else float(e.opacity)))
        cdata = e.name.replace("]]>", "]]]]><![CDATA[>")
        lines.append(
            f'      <Label Key="{e.value}" Red={red} Green={green} Blue={blue} Alpha={alpha}>'
            f"<![CDATA[{cdata}]]></Label>"
        )
    lines += ["    </LabelTable>", "  </VolumeInformation>", "</CaretExtension>", ""]
    return "\n".join(lines).encode("utf-8")
