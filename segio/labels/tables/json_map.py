"""Plain JSON label maps: ``{"1": "liver", ...}`` or ``{"liver": 1, ...}``, also inside
``{"labels": {...}}``.

The direction (value -> name or name -> value) is detected per table. nnU-Net's
``dataset.json`` is such a map with dataset keys around it (:mod:`.nnunet`).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from segio.labels.tables.common import (
    Head,
    LabelEntry,
    check_unique,
    decode,
    dumps,
    fail,
    json_load,
    whole_number,
)


def sniff(head: bytes, name: str) -> float:
    """A flat map at the top or under ``"labels"`` (nnU-Net's sniffer claims its own)."""
    look = Head.of(head, name)
    doc = look.json() if look.kind == "json" else None
    if not isinstance(doc, dict):
        return 0.0
    labels = doc.get("labels")
    if isinstance(labels, dict):
        doc = labels
    return 0.8 if doc and _is_flat_map(doc) else 0.0


def _is_flat_map(doc: dict[str, Any]) -> bool:
    if all(isinstance(v, str) for v in doc.values()):
        return all(re.fullmatch(r"\s*\d+\s*", k) for k in doc)
    return all(isinstance(v, int) and not isinstance(v, bool) for v in doc.values())


def read(data: bytes, src: str | None) -> list[LabelEntry]:
    return read_labels(data, src, nnunet=False)


def read_labels(data: bytes, src: str | None, *, nnunet: bool) -> list[LabelEntry]:
    """The entries of a map at the top of the document or under ``"labels"``; with
    ``nnunet``, region labels (lists) are skipped and ``ignore`` is marked."""
    doc = json_load(decode(data), src)
    labels = doc.get("labels", doc) if isinstance(doc, dict) else None
    if not isinstance(labels, dict):
        raise fail(src, 'expected a JSON object of labels (or {"labels": {...}})')
    by_value = bool(labels) and all(isinstance(v, str) for v in labels.values())
    entries = []
    for key, raw in labels.items():
        if by_value:
            value, name = whole_number(key, "label value", src), raw
        elif isinstance(raw, list) and nnunet:
            warnings.warn(f"{src}: region {key!r} is not a voxel value; skipped", stacklevel=4)
            continue
        elif isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
            value, name = raw, key
        else:
            raise fail(src, f"label {key!r} has value {raw!r}, expected an integer >= 0")
        props = {"nnunet.ignore": "1"} if nnunet and name == "ignore" else {}
        if value > 0:
            entries.append(LabelEntry(value, name, properties=props))
    return check_unique(entries, src)


def write(entries: Sequence[LabelEntry], path: Path) -> str:
    return dumps({str(e.value): e.name for e in entries}, 2)
