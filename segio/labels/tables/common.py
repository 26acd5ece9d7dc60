"""What every label-table format shares: the entry it reads into, and the checks and
number parsing that make readers strict about meaning and writers refuse what they cannot
hold.

A table format module (``segio.labels.tables.slicer_csv``, ...) is three functions that
:class:`~segio.hookspecs.LabelTableSpec` names: ``sniff(head, name) -> float``,
``read(data, src) -> list[LabelEntry]`` and ``write(entries, path) -> str | bytes``. The
helpers here keep those functions short and their messages alike; an outside plugin's
table format may use them too.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from segio.colors import color_for_index
from segio.errors import ReadError, WriteError
from segio.labels.tables import HEAD_SIZE
from segio.terminology import Terminology

Color = tuple[float, float, float]
#: Endings after which only a table of that syntax is looked for (no line-table guessing).
_STRUCTURED_SUFFIXES = (".xml", ".csv", ".tsv", ".json")
#: The five codes of a Terminology: attribute, Slicer CSV column prefix, segio/slicerio JSON key.
CODES = (
    ("category", "Category", "category"),
    ("type", "Type", "type"),
    ("type_modifier", "TypeModifier", "typeModifier"),
    ("region", "Region", "anatomicRegion"),
    ("region_modifier", "RegionModifier", "anatomicRegionModifier"),
)
# "index name R G B [A|T] [tissue]": Slicer .ctbl and FreeSurfer LUT lines.
_N = r"[-+]?\d+"
TABLE_LINE = re.compile(
    rf"\s*({_N})\s+(\S+)\s+({_N})\s+({_N})\s+({_N})(?:\s+({_N}))?(?:\s+({_N}))?"
)


@dataclass
class LabelEntry:
    """The meaning of one voxel value (> 0; 0 is background and never an entry).

    ``color`` is RGB in 0..1; ``layer`` and ``id`` exist in segio-json only. ``properties``
    keeps, as text, what else a table says: ``itksnap.visible``/``itksnap.mesh``,
    ``freesurfer.tissue_type``, ``nnunet.ignore`` and unknown Slicer CSV columns.
    """

    value: int
    name: str
    color: Color | None = None
    opacity: float | None = None
    terminology: Terminology | None = None
    layer: int = 0
    id: str | None = None
    properties: dict[str, str] = field(default_factory=dict)


# -- sniffing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Head:
    """The first bytes of a possible table as its sniffer needs them.

    ``kind`` is the syntax the head is written in, decided once for every sniffer so they
    agree: ``"xml"``, ``"json"``, ``"csv"`` (a Slicer ``LabelValue`` header row) or
    ``"lines"`` (whitespace-separated rows: Slicer ``.ctbl``, ITK-SNAP, FreeSurfer); None
    for a ``.csv``/``.tsv``/``.json`` file that is not of its syntax, which no line-table
    format may claim.
    """

    text: str
    suffix: str
    kind: str | None
    truncated: bool

    @classmethod
    def of(cls, head: bytes, name: str) -> Head:
        """``name`` is the file name or its suffix; only the last ``.part`` counts."""
        suffix = "." + name.lower().rsplit(".", 1)[-1] if name else ""
        text = head[:HEAD_SIZE].decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
        first = text.split("\n", 1)[0]
        kind: str | None
        if text.startswith("<") or suffix == ".xml":
            kind = "xml"
        elif text.startswith("{"):
            kind = "json"
        elif "LabelValue" in first and ("," in first or "\t" in first):
            kind = "csv"
        else:
            kind = None if suffix in _STRUCTURED_SUFFIXES else "lines"
        return cls(text, suffix, kind, len(head) >= HEAD_SIZE)

    def lines(self, limit: int = 20) -> list[str]:
        """The first data lines (no comments or blanks), without a last one cut off."""
        lines = data_lines(self.text)
        if self.truncated and len(lines) > 1:
            lines = lines[:-1]
        return lines[:limit]

    def table_rows(self) -> list[re.Match[str]]:
        """The ``index name R G B ...`` rows, when they are most of the lines, else []."""
        lines = self.lines()
        rows = [m for m in map(TABLE_LINE.match, lines) if m]
        return rows if len(rows) > len(lines) // 2 else []

    def json(self) -> Any:
        """The head parsed as JSON, closing a truncated head after its last complete item;
        None when it is not JSON."""
        text = self.text
        cut = text.rfind(",")
        candidates = (text, text[:cut] + "}", text[:cut] + "}}") if cut > 0 else (text,)
        for candidate in candidates:
            try:
                return json.loads(candidate)
            except (ValueError, RecursionError):
                continue
        return None


# -- reading ---------------------------------------------------------------------------------


def fail(src: str | None, message: str, hint: str | None = None) -> ReadError:
    return ReadError(message, path=src, hint=hint)


def whole_number(text: str, what: str, src: str | None, hi: int | None = None) -> int:
    """A whole number in 0..hi written as text."""
    try:
        number = int(text.strip())
    except ValueError as exc:
        raise fail(src, f"{what} {text!r} is not an integer") from exc
    if number < 0:
        raise fail(src, f"{what} {number} is negative")
    if hi is not None and number > hi:
        raise fail(src, f"{what} {number} is above {hi}")
    return number


def unit(value: object, what: str, src: str | None) -> float:
    """A number in 0..1 (colour component or opacity), from text or JSON."""
    try:
        number = float(value) if isinstance(value, (str, int, float)) else math.nan
    except ValueError as exc:
        raise fail(src, f"{what} {value!r} is not a number") from exc
    if isinstance(value, bool) or not 0.0 <= number <= 1.0:
        raise fail(src, f"{what} {value!r} is not a number in 0..1")
    return number


def color3(raw: Sequence[object], what: str, src: str | None) -> Color:
    if len(raw) != 3:
        raise fail(src, f"{what} must have 3 components, got {len(raw)}")
    return (unit(raw[0], what, src), unit(raw[1], what, src), unit(raw[2], what, src))


def rgb_from_bytes(r: int, g: int, b: int) -> Color:
    return (r / 255, g / 255, b / 255)


def decode(data: bytes) -> str:
    """Tables come in UTF-8 (with or without a BOM) or, from older tools, latin-1."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def data_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def check_unique(entries: list[LabelEntry], src: str | None) -> list[LabelEntry]:
    seen: set[tuple[int, int]] = set()
    for entry in entries:
        if (entry.layer, entry.value) in seen:
            raise fail(src, f"label value {entry.value} appears twice in layer {entry.layer}")
        seen.add((entry.layer, entry.value))
    return entries


def json_load(text: str, src: str | None) -> Any:
    """Strict JSON: a key given twice is an error, not silently the last one."""

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise fail(src, f"JSON key {key!r} appears twice")
            out[key] = value
        return out

    try:
        return json.loads(text, object_pairs_hook=no_duplicates)
    except ValueError as exc:
        raise fail(src, f"not valid JSON: {exc}") from exc
    except RecursionError:
        pass  # raised below, outside the handler, so no RecursionError is chained to it
    raise fail(src, "not valid JSON: it is nested too deeply")


# -- writing ---------------------------------------------------------------------------------


def dumps(doc: object, indent: int) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=indent) + "\n"


def fallback_color(value: int) -> Color:
    """segio's default colour, for formats that need one when an entry has none.

    The index is taken modulo 2**64 (no label type holds more), so a huge value cannot
    overflow the float arithmetic of the palette.
    """
    return color_for_index((value - 1) % (1 << 64))


def rgb255(e: LabelEntry) -> tuple[int, int, int]:
    r, g, b = (round(c * 255) for c in (e.color or fallback_color(e.value)))
    return r, g, b


def alpha255(e: LabelEntry) -> int:
    return round((1.0 if e.opacity is None else e.opacity) * 255)


def _writable_unit(value: object, what: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]  # whatever float() takes
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not 0.0 <= number <= 1.0:
        raise WriteError(f"{what} {value!r} is not a number in 0..1")
    return number


def prepare(entries: Sequence[LabelEntry], fmt: str, *, layers: bool) -> list[LabelEntry]:
    """Check what every format needs (one layer unless the format has ``layers``) and
    return copies with plain Python numbers, so numpy scalars are accepted."""
    seen: set[tuple[int, int]] = set()
    out = []
    for e in entries:
        try:
            value = operator.index(e.value) if not isinstance(e.value, bool) else 0
        except TypeError:
            value = 0
        if value <= 0:
            raise WriteError(f"label value {e.value!r} of {e.name!r} must be an integer > 0")
        if not isinstance(e.name, str) or "\n" in e.name or "\r" in e.name:
            raise WriteError(f"label name {e.name!r} is not text on one line")
        if e.layer != 0 and not layers:
            raise WriteError(
                f"{fmt} describes a single labelmap, but {e.name!r} is in layer {e.layer}",
                hint="write one table per layer, or use segio-json",
            )
        if (e.layer, value) in seen:
            raise WriteError(f"label value {value} is used twice in layer {e.layer}")
        seen.add((e.layer, value))
        color = None
        if e.color is not None:
            if len(e.color) != 3:
                raise WriteError(f"colour of {e.name!r} must have 3 components")
            r, g, b = (_writable_unit(c, f"colour of {e.name!r}") for c in e.color)
            color = (r, g, b)
        opacity = None if e.opacity is None else _writable_unit(e.opacity, "opacity")
        out.append(replace(e, value=value, color=color, opacity=opacity))
    return out
