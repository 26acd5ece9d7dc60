"""segio-json: segio's own label table, the one that keeps every field of a segment.

``{"format": "segio-labels", "version": 1, "segments": [...]}``: id, name, label, layer,
colour, opacity, full terminology and properties. As a sidecar it also carries what a
NIfTI header cannot (:mod:`segio.labels.segments` adds the float64 grid and the conversion
parameters), so ``.seg.nrrd -> NIfTI -> .seg.nrrd`` loses nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from segio.errors import ValidationError
from segio.labels.tables.common import (
    CODES,
    Head,
    LabelEntry,
    check_unique,
    color3,
    decode,
    dumps,
    fail,
    json_load,
    unit,
)
from segio.terminology import ANATOMIC_CONTEXT, SLICER_CONTEXT, Code, Terminology

_MARKER = re.compile(r'"format"\s*:\s*"segio-labels"')


def sniff(head: bytes, name: str) -> float:
    look = Head.of(head, name)
    return 1.0 if look.kind == "json" and _MARKER.search(look.text) else 0.0


def read(data: bytes, src: str | None) -> list[LabelEntry]:
    doc = json_load(decode(data), src)
    if not isinstance(doc, dict) or doc.get("format") != "segio-labels":
        raise fail(src, 'not a segio label table (no "format": "segio-labels")')
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version > 1:
        raise fail(src, f"unsupported segio label table version {version!r}", "upgrade segio")
    segments = doc.get("segments")
    if not isinstance(segments, list):
        raise fail(src, '"segments" must be a list')
    return check_unique([_entry(i, seg, src) for i, seg in enumerate(segments)], src)


def _entry(i: int, seg: object, src: str | None) -> LabelEntry:
    if not isinstance(seg, dict):
        raise fail(src, f"segment {i} is not a JSON object")
    label, layer, name = seg.get("label"), seg.get("layer", 0), seg.get("name", "")
    if not isinstance(label, int) or isinstance(label, bool) or label <= 0:
        raise fail(src, f"segment {i}: label must be an integer > 0, got {label!r}")
    if not isinstance(layer, int) or isinstance(layer, bool) or layer < 0:
        raise fail(src, f"segment {i}: layer must be an integer >= 0, got {layer!r}")
    seg_id, props = seg.get("id"), seg.get("properties", {})
    if not isinstance(name, str) or not (seg_id is None or isinstance(seg_id, str)):
        raise fail(src, f"segment {i}: name and id must be text")
    if not isinstance(props, dict) or not all(isinstance(v, str) for v in props.values()):
        raise fail(src, f"segment {i}: properties must map text to text")
    color, opacity, term = seg.get("color"), seg.get("opacity"), seg.get("terminology")
    if color is not None and not isinstance(color, list):
        raise fail(src, f"segment {i}: color must be [r, g, b]")
    return LabelEntry(
        value=label,
        name=name,
        color=None if color is None else color3(color, f"segment {i} colour", src),
        opacity=None if opacity is None else unit(opacity, "opacity", src),
        terminology=None if term is None else _terminology_from_json(term, src),
        layer=layer,
        id=seg_id,
        properties=dict(props),
    )


def write(entries: Sequence[LabelEntry], path: Path) -> str:
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
    return dumps({"format": "segio-labels", "version": 1, "segments": segments}, 2)


def _terminology_to_json(term: Terminology) -> dict[str, Any]:
    out: dict[str, Any] = {"contextName": term.context}
    for attr, _, key in CODES:
        if key == "anatomicRegion":
            out["anatomicContextName"] = term.region_context
        code: Code | None = getattr(term, attr)
        if code is not None:
            out[key] = [code.scheme, code.value, code.meaning]
    return out


def _terminology_from_json(obj: object, src: str | None) -> Terminology:
    if not isinstance(obj, dict):
        raise fail(src, "terminology must be a JSON object")
    codes: dict[str, Code] = {}
    try:
        for attr, _, key in CODES:
            raw = obj.get(key)
            if raw is None or raw == ["", "", ""]:
                continue
            if not (
                isinstance(raw, list) and len(raw) == 3 and all(isinstance(s, str) for s in raw)
            ):
                raise fail(src, f"terminology {key} must be [scheme, value, meaning]")
            codes[attr] = Code(*raw)
        context, region_context = obj.get("contextName"), obj.get("anatomicContextName")
        if "category" not in codes or "type" not in codes:
            raise fail(src, "terminology needs a category and a type")
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
        raise fail(src, f"invalid terminology: {exc}") from exc
