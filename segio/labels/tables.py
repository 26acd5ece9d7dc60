"""Label tables: the names, colours and codes that a plain labelmap cannot hold.

A NIfTI (or plain NRRD) labelmap stores integers only. Every tool that writes one keeps
the meaning of the integers somewhere else, each in its own layout: 3D Slicer colour
tables (``.ctbl``, ``.labels.csv``), ITK-SNAP ``.label`` files, FreeSurfer LUTs, nnU-Net's
``dataset.json``, plain JSON maps and TotalSegmentator's Caret XML header extension.
Without them a conversion through NIfTI gives ``Segment_1, Segment_2, ...`` (Slicer
#4733, spec ``seg-nrrd-and-model.md`` §4 and §5.2). This module reads and writes them,
plus segio's own lossless ``segio-json`` sidecar, so names, colours and terminology
survive.

Readers are lenient about layout (comments, BOMs, latin-1, missing optional columns)
and strict about meaning: wrong numbers raise :class:`~segio.errors.ReadError` instead
of giving voxels the wrong names. Writers refuse what the target format cannot hold
(:class:`~segio.errors.WriteError`) instead of mangling it. Only segio-json keeps every
field; the others keep what they have columns for, round colours to 0-255 where they
store integers, give an entry without a colour a generated one where a colour is
required, and (Slicer ``.ctbl``) read every ``_`` in a name back as a space.
"""

from __future__ import annotations

import csv
import io
import json
import math
import operator
import os
import re
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from segio.colors import color_for_index
from segio.errors import ReadError, SegioError, UnknownFormatError, ValidationError, WriteError
from segio.fileio.inputs import open_input, read_input, referenced_file
from segio.terminology import ANATOMIC_CONTEXT, SLICER_CONTEXT, Code, Terminology

Color = tuple[float, float, float]
#: The largest index of a Slicer colour table: Slicer holds it as a dense lookup table.
_CTBL_MAX = 1_000_000
#: The largest label table read (65,535 labels with full terminology take about 30 MB).
MAX_TABLE_BYTES = 256 << 20


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


LABEL_TABLE_FORMATS: tuple[str, ...] = (
    "segio-json",
    "slicer-csv",
    "slicer-ctbl",
    "itksnap",
    "freesurfer",
    "nnunet",
    "json-map",
    "caret-xml",
)

_IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
# Sidecars next to <stem>.<image suffix>, in order of preference (no "<stem>_labels.txt":
# no tool writes that name). dataset.json (nnU-Net) is looked for afterwards.
_SIDECAR_SUFFIXES = (".json", ".labels.csv", ".csv", ".tsv", ".ctbl", ".label", ".txt")
_NNUNET_KEYS = {"channel_names", "modality", "numTraining", "file_ending", "training"}
# The five codes of a Terminology: attribute, Slicer CSV column prefix, slicerio JSON key.
_CODES = (
    ("category", "Category", "category"),
    ("type", "Type", "type"),
    ("type_modifier", "TypeModifier", "typeModifier"),
    ("region", "Region", "anatomicRegion"),
    ("region_modifier", "RegionModifier", "anatomicRegionModifier"),
)
_CSV_PARTS = ("_CodingScheme", "_CodeValue", "_CodeMeaning")
_CSV_COLUMNS = ["LabelValue", "Name", "Color_R", "Color_G", "Color_B", "Color_A"]
_CSV_COLUMNS += [prefix + part for _, prefix, _ in _CODES for part in _CSV_PARTS]
_N = r"[-+]?\d+"
# "index name R G B [A|T] [tissue]": Slicer .ctbl and FreeSurfer LUT lines.
_TABLE_LINE = re.compile(
    rf"\s*({_N})\s+(\S+)\s+({_N})\s+({_N})\s+({_N})(?:\s+({_N}))?(?:\s+({_N}))?"
)
# ITK-SNAP: IDX R G B A VIS MSH "LABEL" (the label runs to the next quote).
_ITKSNAP_LINE = re.compile(r"\s*(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+\"([^\"]*)")


# -- shared helpers ----------------------------------------------------------------------


def _fail(src: str | None, message: str, hint: str | None = None) -> ReadError:
    return ReadError(message, path=src, hint=hint)


def _int(text: str, what: str, src: str | None, hi: int | None = None) -> int:
    """A whole number in 0..hi written as text."""
    try:
        number = int(text.strip())
    except ValueError as exc:
        raise _fail(src, f"{what} {text!r} is not an integer") from exc
    if number < 0:
        raise _fail(src, f"{what} {number} is negative")
    if hi is not None and number > hi:
        raise _fail(src, f"{what} {number} is above {hi}")
    return number


def _unit(value: object, what: str, src: str | None) -> float:
    """A number in 0..1 (colour component or opacity), from text or JSON."""
    try:
        number = float(value) if isinstance(value, (str, int, float)) else math.nan
    except ValueError as exc:
        raise _fail(src, f"{what} {value!r} is not a number") from exc
    if isinstance(value, bool) or not 0.0 <= number <= 1.0:
        raise _fail(src, f"{what} {value!r} is not a number in 0..1")
    return number


def _color3(raw: Sequence[object], what: str, src: str | None) -> Color:
    if len(raw) != 3:
        raise _fail(src, f"{what} must have 3 components, got {len(raw)}")
    return (_unit(raw[0], what, src), _unit(raw[1], what, src), _unit(raw[2], what, src))


def _rgb_from_bytes(r: int, g: int, b: int) -> Color:
    return (r / 255, g / 255, b / 255)


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _data_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def _check_unique(entries: list[LabelEntry], src: str | None) -> list[LabelEntry]:
    seen: set[tuple[int, int]] = set()
    for entry in entries:
        if (entry.layer, entry.value) in seen:
            raise _fail(src, f"label value {entry.value} appears twice in layer {entry.layer}")
        seen.add((entry.layer, entry.value))
    return entries


def _json_load(text: str, src: str | None) -> Any:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise _fail(src, f"JSON key {key!r} appears twice")
            out[key] = value
        return out

    try:
        return json.loads(text, object_pairs_hook=no_duplicates)
    except ValueError as exc:
        raise _fail(src, f"not valid JSON: {exc}") from exc
    except RecursionError:
        pass  # raised below, outside the handler, so no RecursionError is chained to it
    raise _fail(src, "not valid JSON: it is nested too deeply")


# -- segio-json -----------------------------------------------------------------------------


def _terminology_to_json(term: Terminology) -> dict[str, Any]:
    out: dict[str, Any] = {"contextName": term.context}
    for attr, _, key in _CODES:
        if key == "anatomicRegion":
            out["anatomicContextName"] = term.region_context
        code: Code | None = getattr(term, attr)
        if code is not None:
            out[key] = [code.scheme, code.value, code.meaning]
    return out


def _terminology_from_json(obj: object, src: str | None) -> Terminology:
    if not isinstance(obj, dict):
        raise _fail(src, "terminology must be a JSON object")
    codes: dict[str, Code] = {}
    try:
        for attr, _, key in _CODES:
            raw = obj.get(key)
            if raw is None or raw == ["", "", ""]:
                continue
            if not (
                isinstance(raw, list) and len(raw) == 3 and all(isinstance(s, str) for s in raw)
            ):
                raise _fail(src, f"terminology {key} must be [scheme, value, meaning]")
            codes[attr] = Code(*raw)
        context, region_context = obj.get("contextName"), obj.get("anatomicContextName")
        if "category" not in codes or "type" not in codes:
            raise _fail(src, "terminology needs a category and a type")
        return Terminology(
            category=codes["category"],
            type=codes["type"],
            type_modifier=codes.get("type_modifier"),
            region=codes.get("region"),
            region_modifier=codes.get("region_modifier"),
            context=context if isinstance(context, str) else SLICER_CONTEXT,
            region_context=region_context if isinstance(region_context, str) else ANATOMIC_CONTEXT,
        )
    except ValidationError as exc:
        raise _fail(src, f"invalid terminology: {exc}") from exc


def _read_segio_json(text: str, src: str | None) -> list[LabelEntry]:
    doc = _json_load(text, src)
    if not isinstance(doc, dict) or doc.get("format") != "segio-labels":
        raise _fail(src, 'not a segio label table (no "format": "segio-labels")')
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version > 1:
        raise _fail(src, f"unsupported segio label table version {version!r}", "upgrade segio")
    segments = doc.get("segments")
    if not isinstance(segments, list):
        raise _fail(src, '"segments" must be a list')
    entries = []
    for i, seg in enumerate(segments):
        if not isinstance(seg, dict):
            raise _fail(src, f"segment {i} is not a JSON object")
        label, layer, name = seg.get("label"), seg.get("layer", 0), seg.get("name", "")
        if not isinstance(label, int) or isinstance(label, bool) or label <= 0:
            raise _fail(src, f"segment {i}: label must be an integer > 0, got {label!r}")
        if not isinstance(layer, int) or isinstance(layer, bool) or layer < 0:
            raise _fail(src, f"segment {i}: layer must be an integer >= 0, got {layer!r}")
        seg_id, props = seg.get("id"), seg.get("properties", {})
        if not isinstance(name, str) or not (seg_id is None or isinstance(seg_id, str)):
            raise _fail(src, f"segment {i}: name and id must be text")
        if not isinstance(props, dict) or not all(isinstance(v, str) for v in props.values()):
            raise _fail(src, f"segment {i}: properties must map text to text")
        color, opacity, term = seg.get("color"), seg.get("opacity"), seg.get("terminology")
        if color is not None and not isinstance(color, list):
            raise _fail(src, f"segment {i}: color must be [r, g, b]")
        entries.append(
            LabelEntry(
                value=label,
                name=name,
                color=None if color is None else _color3(color, f"segment {i} colour", src),
                opacity=None if opacity is None else _unit(opacity, "opacity", src),
                terminology=None if term is None else _terminology_from_json(term, src),
                layer=layer,
                id=seg_id,
                properties=dict(props),
            )
        )
    return _check_unique(entries, src)


def _write_segio_json(entries: Sequence[LabelEntry], path: Path) -> str:
    segments = []
    for e in entries:
        seg: dict[str, Any] = {"id": e.id} if e.id is not None else {}
        seg.update(name=e.name, label=e.value, layer=e.layer)
        if e.color is not None:
            seg["color"] = [float(c) for c in e.color]
        if e.opacity is not None:
            seg["opacity"] = float(e.opacity)
        if e.terminology is not None:
            seg["terminology"] = _terminology_to_json(e.terminology)
        if e.properties:
            seg["properties"] = dict(e.properties)
        segments.append(seg)
    doc = {"format": "segio-labels", "version": 1, "segments": segments}
    return _dumps(doc, 2)


# -- Slicer colour tables ---------------------------------------------------------------


def _read_slicer_csv(text: str, src: str | None) -> list[LabelEntry]:
    first = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first and "," not in first else ","
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    except csv.Error as exc:
        raise _fail(src, f"malformed CSV: {exc}") from exc
    if not rows:
        raise _fail(src, "empty label table")
    header = [h.strip() for h in rows[0]]
    if "LabelValue" not in header:
        raise _fail(src, "missing the required column LabelValue", "is this a Slicer colour CSV?")
    entries = []
    for row in rows[1:]:
        if not any(cell.strip() for cell in row):
            continue
        cells = dict(zip(header, (c.strip() for c in row), strict=False))
        value = _int(cells.get("LabelValue", ""), "LabelValue", src)
        if value == 0:
            continue
        rgb = [cells.get(f"Color_{c}", "") for c in "RGB"]
        color = _rgb_from_bytes(*(_int(c, "colour", src, 255) for c in rgb)) if all(rgb) else None
        alpha = cells.get("Color_A", "")
        props = {k: v for k, v in cells.items() if k not in _CSV_COLUMNS and k and v}
        codes: list[Code | None] = []
        for _, prefix, _ in _CODES:
            scheme, code_value, meaning = (cells.get(prefix + s, "") for s in _CSV_PARTS)
            codes.append(Code(scheme, code_value, meaning) if scheme and code_value else None)
        category, type_, modifier, region, region_modifier = codes
        term = None  # the context name is not stored: Terminology's defaults apply
        if category and type_:
            term = Terminology(
                category, type_, modifier, region, region_modifier if region else None
            )
        entries.append(
            LabelEntry(
                value,
                cells.get("Name", ""),
                color,
                _int(alpha, "Color_A", src, 255) / 255 if alpha else None,
                term,
                properties=props,
            )
        )
    return _check_unique(entries, src)


def _write_slicer_csv(entries: Sequence[LabelEntry], path: Path) -> str:
    if any('"' in e.name for e in entries):
        raise WriteError('Slicer colour CSV values cannot contain " (a VTK limitation)')
    out = io.StringIO()
    # TSV when the name has a .tsv part, also for a staged temporary name (x.tsv.tmp)
    delimiter = "\t" if "tsv" in path.name.lower().split(".")[1:] else ","
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow(_CSV_COLUMNS)
    for e in entries:
        codes: list[str] = []
        for attr, _, _ in _CODES:
            code = getattr(e.terminology, attr) if e.terminology else None
            codes += [code.scheme, code.value, code.meaning] if code else ["", "", ""]
        writer.writerow([e.value, e.name, *_rgb255(e), _alpha255(e), *codes])
    return out.getvalue()


def _read_slicer_ctbl(text: str, src: str | None) -> list[LabelEntry]:
    if text.lstrip().startswith("# Color procedural file"):
        raise _fail(
            src,
            "this is a Slicer procedural (continuous) colour file, not a label table",
            "export the discrete colour table (.ctbl or .csv) instead",
        )
    entries = []
    for line in _data_lines(text):
        fields = line.split()
        if len(fields) < 5:
            raise _fail(src, f"colour table line {line.strip()!r} needs index name R G B [A]")
        value = _int(fields[0], "colour index", src, _CTBL_MAX)
        r, g, b, *rest = (_int(f, "colour", src, 255) for f in fields[2:6])
        name = fields[1].strip('"')
        if value > 0:
            name = "" if name == "_" else name.replace("_", " ")
            alpha = rest[0] / 255 if rest else None
            entries.append(LabelEntry(value, name, _rgb_from_bytes(r, g, b), alpha))
    return _check_unique(entries, src)


def _write_slicer_ctbl(entries: Sequence[LabelEntry], path: Path) -> str:
    lines = ["# Color table file written by segio", f"# {len(entries)} values"]
    for e in entries:
        if e.value > _CTBL_MAX:
            raise WriteError(
                f"label {e.value} is above {_CTBL_MAX}, the largest index of a Slicer colour table",
                hint="use sidecar=segio-json or slicer-csv",
            )
        if re.search(r'[^\S ]|"', e.name):
            raise WriteError(f"name {e.name!r} has a tab or quote, which a .ctbl cannot hold")
        name = e.name.replace(" ", "_") or "_"
        lines.append(" ".join(map(str, (e.value, name, *_rgb255(e), _alpha255(e)))))
    return "\n".join(lines) + "\n"


# -- ITK-SNAP and FreeSurfer ------------------------------------------------------------


def _read_itksnap(text: str, src: str | None) -> list[LabelEntry]:
    entries = []
    for line in _data_lines(text):
        match = _ITKSNAP_LINE.match(line)
        if match is None:
            raise _fail(src, f'ITK-SNAP line {line.strip()!r} is not IDX R G B A VIS MSH "LABEL"')
        idx, r, g, b, alpha, vis, msh, name = match.groups()
        value = _int(idx, "label index", src)
        rgb = [_int(c, "colour", src, 255) for c in (r, g, b)]
        props = {
            "itksnap.visible": str(_int(vis, "VIS", src, 1)),
            "itksnap.mesh": str(_int(msh, "MSH", src, 1)),
        }
        opacity = _unit(alpha, "alpha", src)
        if value > 0:  # index 0 is ITK-SNAP's fixed "Clear Label"
            entries.append(
                LabelEntry(value, name, _rgb_from_bytes(*rgb), opacity, properties=props)
            )
    return _check_unique(entries, src)


def _write_itksnap(entries: Sequence[LabelEntry], path: Path) -> str:
    lines = [
        "################################################",
        "# ITK-SnAP Label Description File",
        '# File format: IDX R G B A VIS MSH "LABEL"',
        "#   R, G, B: 0..255; A: opacity 0..1; VIS, MSH: 0 or 1",
        "# Written by segio",
        "################################################",
        '    0     0    0    0        0  0  0    "Clear Label"',
    ]
    for e in entries:
        if '"' in e.name:
            raise WriteError(f'name {e.name!r} contains ", which ITK-SNAP label files cannot hold')
        flags = [e.properties.get(f"itksnap.{k}", "1") for k in ("visible", "mesh")]
        if any(f not in ("0", "1") for f in flags):
            raise WriteError(f"ITK-SNAP visibility flags of label {e.value} must be 0 or 1")
        alpha = format(round(1.0 if e.opacity is None else e.opacity, 3), "g")
        r, g, b = _rgb255(e)
        vis, msh = flags
        lines.append(
            f'{e.value:5d} {r:5d} {g:4d} {b:4d} {alpha:>8} {vis:>2} {msh:>2}    "{e.name}"'
        )
    return "\n".join(lines) + "\n"


def _read_freesurfer(text: str, src: str | None) -> list[LabelEntry]:
    entries: dict[int, LabelEntry] = {}
    twice: list[int] = []
    for line in text.splitlines():
        match = _TABLE_LINE.match(line)
        if match is None or match.group(6) is None:  # FreeSurfer ignores lines it cannot scan
            continue
        value = _int(match.group(1), "label index", src)
        r, g, b, t = (_int(match.group(i), "colour", src, 255) for i in range(3, 7))
        props = {"freesurfer.tissue_type": match.group(7)} if match.group(7) else {}
        if value in entries:
            twice.append(value)
        elif value > 0:
            color = _rgb_from_bytes(r, g, b)
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


def _write_freesurfer(entries: Sequence[LabelEntry], path: Path) -> str:
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
        r, g, b, t = (*_rgb255(e), 255 - _alpha255(e))
        lines.append(f"{e.value:<5d} {e.name:<40} {r:3d} {g:3d} {b:3d} {t:3d} {tissue}".rstrip())
    return "\n".join(lines) + "\n"


# -- nnU-Net and plain JSON maps ---------------------------------------------------------


def _map_entries(labels: dict[str, Any], src: str | None, nnunet: bool) -> list[LabelEntry]:
    """{"1": "liver"} (v1 / Decathlon) or {"liver": 1} (nnU-Net v2), detected per table."""
    by_value = bool(labels) and all(isinstance(v, str) for v in labels.values())
    entries = []
    for key, raw in labels.items():
        if by_value:
            value, name = _int(key, "label value", src), raw
        elif isinstance(raw, list) and nnunet:
            warnings.warn(f"{src}: region {key!r} is not a voxel value; skipped", stacklevel=5)
            continue
        elif isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
            value, name = raw, key
        else:
            raise _fail(src, f"label {key!r} has value {raw!r}, expected an integer >= 0")
        props = {"nnunet.ignore": "1"} if nnunet and name == "ignore" else {}
        if value > 0:
            entries.append(LabelEntry(value, name, properties=props))
    return _check_unique(entries, src)


def _read_json_labels(text: str, src: str | None, nnunet: bool) -> list[LabelEntry]:
    doc = _json_load(text, src)
    labels = doc.get("labels", doc) if isinstance(doc, dict) else None
    if not isinstance(labels, dict):
        raise _fail(src, 'expected a JSON object of labels (or {"labels": {...}})')
    return _map_entries(labels, src, nnunet)


def _write_nnunet(entries: Sequence[LabelEntry], path: Path) -> str:
    if sorted(e.value for e in entries) != list(range(1, len(entries) + 1)):
        raise WriteError("nnU-Net needs label values 1..N without gaps", hint="relabel first")
    names = ["background"] + [e.name for e in entries]
    if len(set(names)) != len(names):
        raise WriteError("nnU-Net label names must be unique and differ from 'background'")
    try:  # update the labels of an existing dataset.json, keep everything else
        existing = path.read_bytes() if path.is_file() else b""
        doc = json.loads(_decode(existing)) if existing.strip() else {}
    except (OSError, ValueError, RecursionError) as exc:
        raise WriteError(f"cannot update the existing file: {exc}", path=path) from exc
    if not isinstance(doc, dict):
        raise WriteError("the existing dataset.json is not a JSON object", path=path)
    doc["labels"] = {
        "background": 0,
        **{e.name: e.value for e in sorted(entries, key=lambda e: e.value)},
    }
    return _dumps(doc, 4)


# -- TotalSegmentator's Caret XML ------------------------------------------------------------


def parse_caret_xml(xml: bytes) -> list[LabelEntry]:
    """Read the Caret/CIFTI ``<LabelTable>`` TotalSegmentator puts in a NIfTI extension.

    Anything from the first NUL on is padding and ignored; key 0 is background.
    """
    return _parse_caret(xml, None)


def _parse_caret(xml: bytes, src: str | None) -> list[LabelEntry]:
    data = xml.split(b"\x00", 1)[0].strip()
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise _fail(src, "label table XML must not declare a DOCTYPE or entities")
    try:
        root = ET.fromstring(data)
    except (ET.ParseError, ValueError, LookupError) as exc:
        raise _fail(src, f"not well-formed XML: {exc}") from exc
    if root.tag not in ("CaretExtension", "LabelTable") and root.find(".//LabelTable") is None:
        raise _fail(src, "no Caret <LabelTable> in this XML")
    entries = []
    for label in root.iter("Label"):
        value = _int(label.get("Key", ""), "label Key", src)
        rgb = _color3([label.get(c, "") for c in ("Red", "Green", "Blue")], "colour", src)
        alpha = label.get("Alpha")
        if value > 0:
            opacity = None if alpha is None else _unit(alpha, "Alpha", src)
            entries.append(LabelEntry(value, (label.text or "").strip(), rgb, opacity))
    return _check_unique(entries, src)


def caret_xml(entries: Sequence[LabelEntry]) -> bytes:
    """Serialise as TotalSegmentator's Caret XML label table (no NUL padding added)."""
    entries = _prepare(entries, "caret-xml")
    lines = [
        "<?xml version='1.0' encoding='UTF-8'?>",
        "<CaretExtension>",
        '  <VolumeInformation Index="0">',
        "    <LabelTable>",
    ]
    for e in entries:
        if re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", e.name):
            raise WriteError(f"name {e.name!r} has control characters, which XML cannot hold")
        red, green, blue = (
            quoteattr(repr(float(c))) for c in (e.color or _fallback_color(e.value))
        )
        alpha = quoteattr(repr(1.0 if e.opacity is None else float(e.opacity)))
        cdata = e.name.replace("]]>", "]]]]><![CDATA[>")
        lines.append(
            f'      <Label Key="{e.value}" Red={red} Green={green} Blue={blue} Alpha={alpha}>'
            f"<![CDATA[{cdata}]]></Label>"
        )
    lines += ["    </LabelTable>", "  </VolumeInformation>", "</CaretExtension>", ""]
    return "\n".join(lines).encode("utf-8")


# -- writing helpers -----------------------------------------------------------------------


def _fallback_color(value: int) -> Color:
    """segio's default colour, for formats that need one when an entry has none.

    The index is taken modulo 2**64 (no label type holds more), so a huge value cannot
    overflow the float arithmetic of the palette.
    """
    return color_for_index((value - 1) % (1 << 64))


def _rgb255(e: LabelEntry) -> tuple[int, int, int]:
    r, g, b = (round(c * 255) for c in (e.color or _fallback_color(e.value)))
    return r, g, b


def _alpha255(e: LabelEntry) -> int:
    return round((1.0 if e.opacity is None else e.opacity) * 255)


def _writable_unit(value: object, what: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]  # whatever float() takes
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not 0.0 <= number <= 1.0:
        raise WriteError(f"{what} {value!r} is not a number in 0..1")
    return number


def _prepare(entries: Sequence[LabelEntry], fmt: str) -> list[LabelEntry]:
    """Check what every format needs (flat formats, all but segio-json, have one layer) and
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
        if e.layer != 0 and fmt != "segio-json":
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


# -- public API ------------------------------------------------------------------------------

# Readers take decoded text and the path for messages (caret-xml takes the raw bytes).
_READERS: dict[str, Callable[[str, str | None], list[LabelEntry]]] = {
    "segio-json": _read_segio_json,
    "slicer-csv": _read_slicer_csv,
    "slicer-ctbl": _read_slicer_ctbl,
    "itksnap": _read_itksnap,
    "freesurfer": _read_freesurfer,
    "nnunet": lambda text, src: _read_json_labels(text, src, nnunet=True),
    "json-map": lambda text, src: _read_json_labels(text, src, nnunet=False),
}


_WRITERS: dict[str, Callable[[list[LabelEntry], Path], str | bytes]] = {
    "segio-json": _write_segio_json,
    "slicer-csv": _write_slicer_csv,
    "slicer-ctbl": _write_slicer_ctbl,
    "itksnap": _write_itksnap,
    "freesurfer": _write_freesurfer,
    "nnunet": _write_nnunet,
    "json-map": lambda entries, _: _dumps({str(e.value): e.name for e in entries}, 2),
    "caret-xml": lambda entries, _: caret_xml(entries),
}


def _dumps(doc: object, indent: int) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=indent) + "\n"


def _check_format(fmt: str) -> None:
    if fmt not in LABEL_TABLE_FORMATS:
        raise UnknownFormatError(
            f"unknown label table format {fmt!r}",
            hint=f"use one of {', '.join(LABEL_TABLE_FORMATS)}",
        )


def read_label_table(
    path: str | os.PathLike[str], *, format: str | None = None
) -> list[LabelEntry]:
    """Read a label table; the format is sniffed from content and suffix when not given.

    Only a regular file is read (a FIFO or a device given as the table is refused, not
    waited on), and at most :data:`MAX_TABLE_BYTES`.
    """
    path = Path(path)
    if format is not None:
        _check_format(format)
    data = read_input(path, what="the label table", limit=MAX_TABLE_BYTES)
    fmt = format or sniff_label_table(data[:4096], path.suffix)
    if fmt is None:
        raise ReadError(
            "not a label table segio recognises",
            path=path,
            hint=f"pass format= one of {', '.join(LABEL_TABLE_FORMATS)}",
        )
    if fmt == "caret-xml":
        return _parse_caret(data, str(path))
    return _READERS[fmt](_decode(data), str(path))


def write_label_table(
    path: str | os.PathLike[str], entries: Sequence[LabelEntry], *, format: str
) -> None:
    """Write ``entries`` to ``path`` as ``format`` (UTF-8); see the module docstring for losses.

    ``nnunet`` updates the ``labels`` of an existing ``dataset.json`` and keeps its other keys.
    """
    _check_format(format)
    path = Path(path)
    try:
        data = _WRITERS[format](_prepare(entries, format), path)
    except WriteError as exc:
        if exc.path is not None:
            raise
        raise WriteError(exc.reason, path=path, hint=exc.hint) from exc
    try:
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    except OSError as exc:
        raise WriteError(f"cannot write the label table: {exc.strerror or exc}", path=path) from exc


def sniff_label_table(head: bytes, suffix: str) -> str | None:
    """Guess the label-table format from the first 4 KiB and the file suffix, or None.

    ``suffix`` may also be the whole file name (``liver.labels.csv``); its last part counts.
    """
    suffix = "." + suffix.lower().rsplit(".", 1)[-1] if suffix else ""
    text = head[:4096].decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    if text.startswith("<") or suffix == ".xml":
        return "caret-xml" if "<CaretExtension" in text or "<LabelTable" in text else None
    if text.startswith("{"):
        return _sniff_json(text)
    first = text.split("\n", 1)[0]
    if "LabelValue" in first and ("," in first or "\t" in first):
        return "slicer-csv"
    if suffix in (".csv", ".tsv", ".json"):
        return None
    if "itk-snap label description" in text[:1024].lower():
        return "itksnap"
    if text.startswith(("# Color table file", "# Color procedural file")):
        return "slicer-ctbl"
    lines = _data_lines(text)
    if len(head) >= 4096 and len(lines) > 1:  # the last line may be cut off
        lines = lines[:-1]
    lines = lines[:20]
    if lines and all(_ITKSNAP_LINE.match(ln) for ln in lines):
        return "itksnap"
    table = [m for m in map(_TABLE_LINE.match, lines) if m]
    if not table or len(table) <= len(lines) // 2:
        return None
    if suffix == ".ctbl":
        return "slicer-ctbl"
    comments = text.lower()
    if suffix == ".ctab" or "freesurfer" in comments or "#no. label name" in comments:
        return "freesurfer"
    # FreeSurfer's 5th number is transparency (0 = opaque), Slicer's is alpha (255 = opaque).
    fifth = [m.group(6) for m in table if m.group(1) != "0"]
    if any(m.group(7) for m in table) or (fifth and all(f == "0" for f in fifth)):
        return "freesurfer"
    return "slicer-ctbl"


def _sniff_json(text: str) -> str | None:
    if re.search(r'"format"\s*:\s*"segio-labels"', text):
        return "segio-json"
    doc: Any = None
    cut = text.rfind(",")  # a truncated head: close it after its last complete item
    candidates = (text, text[:cut] + "}", text[:cut] + "}}") if cut > 0 else (text,)
    for candidate in candidates:
        try:
            doc = json.loads(candidate)
            break
        except (ValueError, RecursionError):
            continue
    if not isinstance(doc, dict):
        return None
    labels = doc.get("labels")
    if isinstance(labels, dict):
        if (
            _NNUNET_KEYS & doc.keys()
            or labels.get("background") == 0
            or labels.get("0") == "background"
        ):
            return "nnunet"
        doc = labels
    return "json-map" if doc and _is_flat_map(doc) else None


def _is_flat_map(doc: dict[str, Any]) -> bool:
    if all(isinstance(v, str) for v in doc.values()):
        return all(re.fullmatch(r"\s*\d+\s*", k) for k in doc)
    return all(isinstance(v, int) and not isinstance(v, bool) for v in doc.values())


def _image_stem(image: Path) -> str:
    name = image.name
    for suffix in _IMAGE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return image.stem


def find_sidecar(image_path: str | os.PathLike[str]) -> Path | None:
    """The label table that belongs to a labelmap image, or None.

    Tries ``<stem>.json`` (only if it is a label table, so BIDS sidecars are skipped),
    ``.labels.csv``, ``.csv``, ``.tsv``, ``.ctbl``, ``.label``, ``.txt``, then nnU-Net's
    ``dataset.json`` in the image's folder and up to two parents (``labelsTr/``).
    """
    image = Path(image_path)
    stem = _image_stem(image)
    candidates = [image.with_name(stem + s) for s in _SIDECAR_SUFFIXES]
    candidates += [folder / "dataset.json" for folder in [image.parent, *image.parent.parents][:3]]
    for candidate in candidates:
        if candidate == image or not os.path.lexists(candidate):
            continue
        head = _candidate_head(candidate)
        if head is not None and sniff_label_table(head, candidate.suffix) is not None:
            return candidate
    return None


def _candidate_head(candidate: Path) -> bytes | None:
    """The first 4 KiB of a possible sidecar; None (with a warning) when it may not be read.

    A sidecar is found by name, not named by the user, so it must be a regular file that
    stays in its own folder: a link planted there pointing elsewhere (another user's file,
    ``/dev/zero``, a FIFO) is skipped without being opened.
    """
    try:
        checked = referenced_file(candidate, candidate.name, what="the label table")
        with open_input(checked, what="the label table") as stream:
            return stream.read(4096)
    except SegioError as exc:
        warnings.warn(f"{exc.path}: label table not used: {exc.reason}", stacklevel=4)
    except OSError:
        pass
    return None
