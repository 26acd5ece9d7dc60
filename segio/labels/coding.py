"""Set segments' terminology from an explicit table (``-I terminology=FILE``).

The table is any label table segio reads that carries codes (Slicer's colour CSV,
segio-json, dcmqi's segmentation JSON; :mod:`segio.labels.tables`) or TotalSegmentator's
SNOMED mapping CSV (``Structure,SegmentedPropertyCategoryCodeSequence.CodingSchemeDesignator,
...``: names and codes, no label values). Rows are matched to segments by name, compared as
:func:`segio.labels.catalogue.normalize` compares them, and, for a row whose name matches
no segment, by label value (and layer, when the table has layers). A table's codes replace
a segment's own: the user named the table. Segments the table does not cover keep what
they had, and one warning lists them.
"""

from __future__ import annotations

import csv
import io
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from segio.errors import ReadError, SegioError
from segio.fileio.inputs import read_input
from segio.labels.catalogue import normalize
from segio.labels.tables import HEAD_SIZE, MAX_TABLE_BYTES, read_label_table, sniff_label_table
from segio.labels.tables.common import decode
from segio.model import Segment, Segmentation
from segio.terminology import Code, Terminology

__all__ = ["TermRow", "apply_table", "read_terminology_table"]

_HINT = (
    "give a table with codes: Slicer colour CSV (.labels.csv), segio-json, dcmqi-json, or "
    "TotalSegmentator's SNOMED mapping CSV"
)
#: TotalSegmentator's column prefixes (long DICOM form first), per Terminology attribute.
_PREFIXES = (
    ("category", ("SegmentedPropertyCategoryCodeSequence", "Category")),
    ("type", ("SegmentedPropertyTypeCodeSequence", "Type")),
    ("type_modifier", ("SegmentedPropertyTypeModifierCodeSequence", "TypeModifier")),
    ("region", ("AnatomicRegionSequence", "AnatomicRegion", "Region")),
    ("region_modifier", ("AnatomicRegionModifierSequence", "AnatomicRegionModifier")),
)
_PARTS = ("CodingSchemeDesignator", "CodeValue", "CodeMeaning")
#: How many uncovered segments the warning names before "and N more".
_NAMED = 20


@dataclass(frozen=True, slots=True)
class TermRow:
    """One row of a terminology table; ``value`` is None where the table has no values."""

    name: str
    terminology: Terminology | None
    value: int | None = None
    layer: int = 0


def read_terminology_table(path: str | os.PathLike[str]) -> list[TermRow]:
    """The rows of a table that carries codes; a :class:`ReadError` if it carries none."""
    path = Path(path)
    data = read_input(path, what="the terminology table", limit=MAX_TABLE_BYTES)
    if _is_mapping_csv(data[:HEAD_SIZE]):
        rows = _mapping_csv(decode(data), str(path))
        kind = "TotalSegmentator mapping"
    else:
        kind = sniff_label_table(data[:HEAD_SIZE], path.name) or ""
        if not kind:
            raise ReadError("not a terminology table segio recognises", path=path, hint=_HINT)
        entries = read_label_table(path, format=kind)
        rows = [TermRow(e.name, e.terminology, e.value, e.layer) for e in entries]
    if not any(row.terminology for row in rows):
        raise ReadError(f"the {kind} table has no terminology codes", path=path, hint=_HINT)
    return rows


def _is_mapping_csv(head: bytes) -> bool:
    first = decode(head).lstrip("\ufeff \r\n").split("\n", 1)[0]
    return "CodeValue" in first and "CodingSchemeDesignator" in first and "LabelValue" not in first


def _mapping_csv(text: str, src: str) -> list[TermRow]:
    try:
        table = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise ReadError(f"malformed CSV: {exc}", path=src) from exc
    header = [cell.strip() for cell in table[0]]
    columns: dict[str, tuple[int, int, int]] = {}
    for attr, prefixes in _PREFIXES:
        for prefix in prefixes:
            names = [f"{prefix}.{part}" for part in _PARTS]
            if all(name in header for name in names):
                columns[attr] = (
                    header.index(names[0]),
                    header.index(names[1]),
                    header.index(names[2]),
                )
                break
    if "category" not in columns or "type" not in columns:
        raise ReadError("the mapping CSV has no category and type columns", path=src, hint=_HINT)
    rows = []
    for number, cells in enumerate(table[1:], start=2):
        cells = [cell.strip() for cell in cells]
        if not cells or not cells[0]:
            continue
        codes: dict[str, Code] = {}
        for attr, (scheme, value, meaning) in columns.items():
            if max(scheme, value, meaning) < len(cells) and cells[scheme] and cells[value]:
                codes[attr] = Code(cells[scheme], cells[value], cells[meaning])
        try:
            term = (
                Terminology(
                    codes["category"],
                    codes["type"],
                    codes.get("type_modifier"),
                    codes.get("region"),
                    codes.get("region_modifier") if "region" in codes else None,
                ).normalized()
                if "category" in codes and "type" in codes
                else None
            )
        except SegioError as exc:
            raise ReadError(f"row {number}: {exc.reason}", path=src) from exc
        rows.append(TermRow(cells[0], term))
    return rows


def apply_table(
    segmentation: Segmentation, path: str | os.PathLike[str], *, copy: bool = True
) -> Segmentation:
    """``segmentation`` (a copy unless ``copy=False``) with the table's codes on the
    segments it covers; see the module docstring for the matching rules."""
    rows = [row for row in read_terminology_table(path) if row.terminology is not None]
    target = segmentation.copy() if copy else segmentation
    segments = list(target.segments.values())
    by_name: dict[str, TermRow] = {}
    clashes: set[str] = set()
    for row in rows:
        key = normalize(row.name)
        if not key:
            continue
        seen = by_name.setdefault(key, row).terminology
        if seen is not None and row.terminology is not None and not seen.matches(row.terminology):
            clashes.add(key)
    chosen: dict[str, TermRow] = {}
    for segment in segments:
        key = normalize(segment.name)
        if key in clashes:
            raise ReadError(
                f"the table gives segment {segment.name!r} two different codes "
                "(two of its names read the same)",
                path=path,
                hint="keep one row per name",
            )
        if key in by_name:
            chosen[segment.id] = by_name[key]
    used = {id(row) for row in chosen.values()}
    spare = [row for row in rows if id(row) not in used and row.value is not None]
    chosen.update(_by_value(segments, chosen, spare))
    uncovered: list[str] = []
    for segment in segments:
        match = chosen.get(segment.id)
        if match is None:
            uncovered.append(segment.name)
        else:
            segment.terminology = match.terminology
    if uncovered:
        named = ", ".join(repr(n) for n in uncovered[:_NAMED])
        more = f" and {len(uncovered) - _NAMED} more" if len(uncovered) > _NAMED else ""
        warnings.warn(
            f"{path}: the terminology table does not cover {len(uncovered)} segment(s): "
            f"{named}{more}; they keep the codes they had",
            stacklevel=3,
        )
    return target


def _by_value(
    segments: Sequence[Segment], chosen: dict[str, TermRow], rows: list[TermRow]
) -> dict[str, TermRow]:
    """Rows matched by label value to segments no name matched: by (layer, value) when the
    table has layers, else by value where exactly one segment has it."""
    layered = any(row.layer for row in rows)
    slots: dict[tuple[int, int], list[Segment]] = {}
    for segment in segments:
        if segment.id not in chosen:
            slot = (segment.layer if layered else 0, segment.label_value)
            slots.setdefault(slot, []).append(segment)
    found: dict[str, TermRow] = {}
    for row in rows:
        owners = slots.get((row.layer, row.value or 0), [])
        if len(owners) == 1 and owners[0].id not in found:
            found[owners[0].id] = row
    return found
