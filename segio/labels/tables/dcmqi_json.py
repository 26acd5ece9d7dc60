"""dcmqi's segmentation metadata JSON (``itkimage2segimage --inputMetadata``, the
``meta.json`` that ``segimage2itkimage`` writes).

``{"segmentAttributes": [[{...}, ...], ...], "SeriesDescription": ..., ...}``: one inner
list per labelmap file (a layer here), one object per label: ``labelID``, ``SegmentLabel``,
``SegmentDescription``, ``SegmentAlgorithmType``/``Name``, the five code sequences as
``{"CodingSchemeDesignator", "CodeValue", "CodeMeaning"}`` objects and
``recommendedDisplayRGBValue`` (0-255); schema ``QIICR/dcmqi:doc/schemas/seg-schema.json``.
Descriptions, algorithm and tracking fields become the segment properties the DICOM SEG
plugin writes back (``Description``, ``DICOM.SegmentAlgorithmType``, ...).

dcmqi requires a category and a type for every segment, so an entry without codes is
written with the codes :func:`segio.labels.catalogue.lookup` finds for its name, else as
generic Tissue with one warning naming them, as the DICOM SEG writer does. The series-level
fields (creator, series description, ...) are not label-table fields: written with dcmqi's
defaults, ignored on reading.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from segio.errors import ValidationError, WriteError
from segio.labels.tables.common import (
    Head,
    LabelEntry,
    check_unique,
    decode,
    dumps,
    fail,
    json_load,
    rgb255,
    rgb_from_bytes,
)
from segio.terminology import DEFAULT_TISSUE, Code, Terminology

#: Terminology attribute -> dcmqi key.
_SEQUENCES = (
    ("category", "SegmentedPropertyCategoryCodeSequence"),
    ("type", "SegmentedPropertyTypeCodeSequence"),
    ("type_modifier", "SegmentedPropertyTypeModifierCodeSequence"),
    ("region", "AnatomicRegionSequence"),
    ("region_modifier", "AnatomicRegionModifierSequence"),
)
#: dcmqi key -> segment property (the names the DICOM SEG plugin reads and writes).
_PROPERTIES = {
    "SegmentDescription": "Description",
    "SegmentAlgorithmType": "DICOM.SegmentAlgorithmType",
    "SegmentAlgorithmName": "DICOM.SegmentAlgorithmName",
    "TrackingIdentifier": "DICOM.TrackingIdentifier",
    "TrackingUniqueIdentifier": "DICOM.TrackingUniqueIdentifier",
}
_ALGORITHMS = ("MANUAL", "SEMIAUTOMATIC", "AUTOMATIC")
_CODE_KEYS = ("CodingSchemeDesignator", "CodeValue", "CodeMeaning")
#: Labels a dcmqi table may hold: DICOM numbers segments with an unsigned 16-bit value.
_MAX_LABEL = 65535
_MARKER = re.compile(r'"segmentAttributes"\s*:\s*\[')
_NAMED = 20


def sniff(head: bytes, name: str) -> float:
    look = Head.of(head, name)
    return 1.0 if look.kind == "json" and _MARKER.search(look.text) else 0.0


def read(data: bytes, src: str | None) -> list[LabelEntry]:
    doc = json_load(decode(data), src)
    if not isinstance(doc, dict) or not isinstance(doc.get("segmentAttributes"), list):
        raise fail(src, 'not a dcmqi segmentation JSON ("segmentAttributes" must be a list)')
    entries = []
    for layer, group in enumerate(doc["segmentAttributes"]):
        if not isinstance(group, list):
            raise fail(src, f"segmentAttributes[{layer}] must be a list of segments")
        entries += [
            _entry(item, layer, f"segmentAttributes[{layer}][{i}]", src)
            for i, item in enumerate(group)
        ]
    return check_unique(entries, src)


def _entry(item: object, layer: int, where: str, src: str | None) -> LabelEntry:
    if not isinstance(item, dict):
        raise fail(src, f"{where} is not a JSON object")
    label = item.get("labelID")
    if not isinstance(label, int) or isinstance(label, bool) or not 0 < label <= _MAX_LABEL:
        raise fail(src, f"{where}: labelID must be an integer in 1..{_MAX_LABEL}, got {label!r}")
    name = item.get("SegmentLabel", item.get("SegmentDescription", ""))
    if not isinstance(name, str):
        raise fail(src, f"{where}: SegmentLabel must be text, got {name!r}")
    properties = {}
    for key, prop in _PROPERTIES.items():
        value = item.get(key)
        if value is not None and not isinstance(value, str):
            raise fail(src, f"{where}: {key} must be text, got {value!r}")
        if value:
            properties[prop] = value
    rgb = item.get("recommendedDisplayRGBValue")
    color = None
    if rgb is not None:
        if not (
            isinstance(rgb, list)
            and len(rgb) == 3
            and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in rgb)
        ):
            raise fail(src, f"{where}: recommendedDisplayRGBValue must be 3 integers in 0..255")
        color = rgb_from_bytes(*rgb)
    return LabelEntry(
        value=label,
        name=name,
        color=color,
        terminology=_terminology(item, where, src),
        layer=layer,
        properties=properties,
    )


def _terminology(item: dict[str, Any], where: str, src: str | None) -> Terminology | None:
    codes: dict[str, Code] = {}
    for attr, key in _SEQUENCES:
        raw = item.get(key)
        if raw is None:
            continue
        parts = [raw.get(k) if isinstance(raw, dict) else None for k in _CODE_KEYS]
        texts = [p for p in parts if isinstance(p, str)]
        if len(texts) != len(_CODE_KEYS):
            raise fail(src, f"{where}: {key} must hold {', '.join(_CODE_KEYS)} as text")
        try:
            codes[attr] = Code(*texts)
        except ValidationError as exc:
            raise fail(src, f"{where}: {key}: {exc.reason}") from exc
    if "category" not in codes or "type" not in codes:
        if codes:
            raise fail(src, f"{where}: codes need both a category and a type sequence")
        return None
    if "region_modifier" in codes and "region" not in codes:
        raise fail(src, f"{where}: AnatomicRegionModifierSequence without AnatomicRegionSequence")
    return Terminology(
        codes["category"],
        codes["type"],
        codes.get("type_modifier"),
        codes.get("region"),
        codes.get("region_modifier"),
    ).normalized()


def write(entries: Sequence[LabelEntry], path: Path) -> str:
    from segio.labels.catalogue import lookup

    layers: list[list[dict[str, Any]]] = [
        [] for _ in range(max((e.layer for e in entries), default=0) + 1)
    ]
    generic = []
    for e in entries:
        if e.value > _MAX_LABEL:
            raise WriteError(
                f"label value {e.value} of {e.name!r} is above {_MAX_LABEL}, the largest "
                "DICOM segment number",
                hint="relabel first",
            )
        term = e.terminology or lookup(e.name)
        if term is None:
            generic.append(e.name)
        layers[e.layer].append(_item(e, term or DEFAULT_TISSUE))
    if generic:
        shown = ", ".join(repr(n) for n in generic[:_NAMED])
        more = f" and {len(generic) - _NAMED} more" if len(generic) > _NAMED else ""
        warnings.warn(
            f"{path.name}: {len(generic)} segment(s) have no code for their name and are "
            f"written as generic Tissue: {shown}{more} (dcmqi needs codes)",
            stacklevel=4,
        )
    doc = {
        "ContentCreatorName": "Reader1",
        "ClinicalTrialSeriesID": "Session1",
        "ClinicalTrialTimePointID": "1",
        "SeriesDescription": "Segmentation",
        "SeriesNumber": "300",
        "InstanceNumber": "1",
        "segmentAttributes": layers,
    }
    return dumps(doc, 2)


def _item(e: LabelEntry, term: Terminology) -> dict[str, Any]:
    item: dict[str, Any] = {"labelID": e.value, "SegmentLabel": e.name}
    props = e.properties
    if props.get("Description"):
        item["SegmentDescription"] = props["Description"]
    for attr, key in _SEQUENCES:
        code: Code | None = getattr(term, attr)
        if code is not None:
            item[key] = dict(zip(_CODE_KEYS, (code.scheme, code.value, code.meaning), strict=True))
    algorithm = props.get("DICOM.SegmentAlgorithmType", "MANUAL").upper()
    item["SegmentAlgorithmType"] = algorithm if algorithm in _ALGORITHMS else "MANUAL"
    if item["SegmentAlgorithmType"] != "MANUAL":
        item["SegmentAlgorithmName"] = props.get("DICOM.SegmentAlgorithmName", "segio")
    item["recommendedDisplayRGBValue"] = list(rgb255(e))
    for key in ("TrackingIdentifier", "TrackingUniqueIdentifier"):
        if props.get(_PROPERTIES[key]):
            item[key] = props[_PROPERTIES[key]]
    return item
