"""nnU-Net's and the Medical Segmentation Decathlon's ``dataset.json``.

Its ``labels`` map names to values (``{"background": 0, "liver": 1}``, v2) or values to
names (v1, Decathlon). One file serves every image of a dataset, so it is looked for in
the image's folder and up to two parents (``labelsTr/``), and writing it updates the
labels of an existing file and keeps its other keys.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from segio.errors import WriteError
from segio.labels.tables.common import Head, LabelEntry, decode, dumps
from segio.labels.tables.json_map import read_labels

_DATASET_KEYS = {"channel_names", "modality", "numTraining", "file_ending", "training"}


def sniff(head: bytes, name: str) -> float:
    """A ``labels`` map with a dataset key beside it or a background label 0."""
    look = Head.of(head, name)
    doc = look.json() if look.kind == "json" else None
    labels = doc.get("labels") if isinstance(doc, dict) else None
    if not isinstance(doc, dict) or not isinstance(labels, dict):
        return 0.0
    marked = (
        _DATASET_KEYS & doc.keys()
        or labels.get("background") == 0
        or labels.get("0") == "background"
    )
    return 0.9 if marked else 0.0


def read(data: bytes, src: str | None) -> list[LabelEntry]:
    return read_labels(data, src, nnunet=True)


def write(entries: Sequence[LabelEntry], path: Path) -> str:
    if sorted(e.value for e in entries) != list(range(1, len(entries) + 1)):
        raise WriteError("nnU-Net needs label values 1..N without gaps", hint="relabel first")
    names = ["background"] + [e.name for e in entries]
    if len(set(names)) != len(names):
        raise WriteError("nnU-Net label names must be unique and differ from 'background'")
    try:  # update the labels of an existing dataset.json, keep everything else
        existing = path.read_bytes() if path.is_file() else b""
        doc = json.loads(decode(existing)) if existing.strip() else {}
    except (OSError, ValueError, RecursionError) as exc:
        raise WriteError(f"cannot update the existing file: {exc}", path=path) from exc
    if not isinstance(doc, dict):
        raise WriteError("the existing dataset.json is not a JSON object", path=path)
    doc["labels"] = {
        "background": 0,
        **{e.name: e.value for e in sorted(entries, key=lambda e: e.value)},
    }
    return dumps(doc, 4)
