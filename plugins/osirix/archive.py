"""OsiriX keyed archives (NSKeyedArchiver property lists) and the "OsiriX ROI SR" objects.

OsiriX MD stores an image's ROIs as an archived ``NSArray`` of ``ROI`` objects, in ``.roi``
files and in the Encapsulated Document of a Basic Text SR whose IMAGE item names the image
(spec ``legacy-and-meshes.md`` §1.6). Archives are untrusted: resolved without
instantiating any class, within a depth and an entry count; a cyclic or fanned-out graph is
a one-line :class:`ReadError`.
"""

from __future__ import annotations

import math
import plistlib
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from segio.errors import ReadError, reading

from .rois import _NUMBER, _PLIST_ERRORS, BRUSH_TYPES, SUPPORTED, Roi, _finite, _text, bounded

#: Points OsiriX puts on an oval (``CIRCLERESOLUTION`` in horos ``ROI.m``).
OVAL_POINTS = 200
#: Deepest object graph accepted in a keyed archive (a cycle or a bomb otherwise).
_MAX_DEPTH = 64
#: Most entries (ROIs and the arrays holding them) read from one keyed archive: an OsiriX
#: archive holds the ROIs of one image; shared nested arrays can fan out to billions.
_MAX_ITEMS = 100_000


def unarchive(document: dict[str, Any]) -> Any:
    """Resolve an NSKeyedArchiver plist into plain lists, dicts and strings.

    Arrays become lists, dictionaries dicts, strings/data their value; any other object a
    dict of its keys plus ``$classname``. No Objective-C class is instantiated.
    """
    objects = document["$objects"]
    top = document["$top"]
    root = top.get("root", next(iter(top.values()))) if isinstance(top, dict) else top

    done: dict[int, Any] = {}  # shared objects are resolved once (no exponential fan-out)

    def resolve(value: Any, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise ReadError("the archive nests too deeply (a cycle?)")
        if not isinstance(value, plistlib.UID):
            return value
        if value.data not in done:
            done[value.data] = construct(objects[value.data], depth)
        return done[value.data]

    def construct(value: Any, depth: int) -> Any:
        if value == "$null":
            return None
        if not isinstance(value, dict) or "$class" not in value:
            return value
        cls = objects[value["$class"].data]
        name = cls.get("$classname", "") if isinstance(cls, dict) else ""
        if "NS.objects" in value and "NS.keys" in value:
            keys = [resolve(k, depth + 1) for k in value["NS.keys"]]
            return dict(
                zip(keys, (resolve(v, depth + 1) for v in value["NS.objects"]), strict=True)
            )
        if "NS.objects" in value:
            return [resolve(v, depth + 1) for v in value["NS.objects"]]
        if "NS.string" in value:
            return str(value["NS.string"])
        if "NS.bytes" in value:
            return bytes(value["NS.bytes"]).decode("utf-8", errors="replace")
        if "NS.data" in value:
            return value["NS.data"]
        result = {k: resolve(v, depth + 1) for k, v in value.items() if k != "$class"}
        result["$classname"] = name
        return result

    return resolve(root, 0)


def load_bplist(payload: bytes, path: Path) -> dict[str, Any]:
    """A binary plist, retried without the NUL that DICOM pads odd-length OB values with."""
    for candidate in (payload, payload[:-1] if payload.endswith(b"\x00") else None):
        if candidate is None:
            continue
        try:
            document = bounded(
                partial(plistlib.loads, candidate), "the ROI archive", path, _PLIST_ERRORS
            )
        except ReadError as exc:
            if "nests too deeply" in exc.reason:
                raise
            continue
        if isinstance(document, dict):
            return document
    raise ReadError("the encapsulated ROI archive is not a readable property list", path=path)


def archive_rois(archive: Any, image_uid: str | None) -> list[Roi]:
    """ROI objects of a keyed archive (an array of ROIs, possibly nested per image)."""
    items: list[Any] = list(archive) if isinstance(archive, list) else [archive]
    items.reverse()  # a stack: the next item is at the end
    rois: list[Roi] = []
    entries = len(items)
    while items:
        item = items.pop()
        if isinstance(item, list):
            # Shared nested arrays multiply: count every entry taken, not the loop turns.
            entries += len(item)
            if entries > _MAX_ITEMS:
                raise ReadError(f"the archive holds more than {_MAX_ITEMS} entries")
            items.extend(reversed(item))
            continue
        if not isinstance(item, dict):
            raise ReadError("an archived ROI is not an object")
        rois.append(archived_roi(item, image_uid))
    return rois


def archived_roi(item: dict[str, Any], image_uid: str | None) -> Roi:
    """One archived ROI: pixel points, or its ``rect`` for rectangles, ovals and points."""
    raw = item.get("type", 11)
    if not _finite(raw):
        raise ReadError(f"an archived ROI has type {raw!r}, not a ROI type number")
    kind = int(raw)
    points: list[list[float]] = []
    for point in item.get("points") or []:
        text = point.get("$0", point.get("point")) if isinstance(point, dict) else point
        if isinstance(text, str):
            points.append([float(v) for v in _NUMBER.findall(text.encode())[:2]])
    px = np.array(points, dtype=np.float64).reshape(-1, 2)
    rect = item.get("rect")
    if not len(px) and kind in BRUSH_TYPES:  # the shape is the texture bitmap, not points
        return Roi(_text(item.get("name")), kind, None, None, image_uid, brush_bitmap=True)
    if not len(px) and isinstance(rect, str):
        x, y, w, h = (float(v) for v in _NUMBER.findall(rect.encode())[:4])
        if kind == 6:  # tROI: the four corners
            px = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]])
        elif kind == 9:  # tOval: centre rect.origin, radii rect.size
            angles = np.arange(OVAL_POINTS) * (2 * math.pi / OVAL_POINTS)
            px = np.column_stack([x + w * np.cos(angles), y + h * np.sin(angles)])
        else:  # points and everything else: the origin
            px = np.array([[x, y]])
    color = None
    channels = [item.get(f"color.{c}") for c in ("red", "green", "blue")]
    numbers = [
        min(max(float(c) / 65535, 0.0), 1.0)
        for c in channels
        if isinstance(c, int | float) and not isinstance(c, bool) and math.isfinite(c)
    ]
    if len(numbers) == 3:  # 16 bits per channel in the archive
        color = (numbers[0], numbers[1], numbers[2])
    return Roi(_text(item.get("name")), kind, None, px, image_uid, color)


def sr_rois(data: bytes, path: Path) -> list[Roi]:
    """The ROIs archived in an OsiriX ROI SR, on the image its IMAGE item references."""
    from segio.dicom.series import read_dataset

    ds = read_dataset(path, data=data, force=True)
    with reading(path, "DICOM object"):  # pydicom raises many types on damaged files
        payload = ds.get((0x0042, 0x0011)) or ds.get((0x0071, 0x0011))
        uid = None
        for item in ds.get("ContentSequence", []) or []:
            if str(item.get("ValueType", "")) == "IMAGE" and item.get("ReferencedSOPSequence"):
                uid = str(item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID)
                break
        payload_bytes = payload.value if payload is not None else None
    if not isinstance(payload_bytes, bytes) or not payload_bytes:
        raise ReadError("the SR has no encapsulated ROI archive (0042,0011)", path=path)
    if payload_bytes.startswith(b"\x04\x0bstreamtyped"):
        raise ReadError(
            "this ROI SR holds a Horos typedstream archive, which segio cannot decode",
            path=path,
            hint=f"export the ROIs from Horos instead: {SUPPORTED}",
        )
    document = load_bplist(payload_bytes, path)
    if document.get("$archiver") != "NSKeyedArchiver":
        raise ReadError("the encapsulated document is not an NSKeyedArchiver archive", path=path)
    return archive_rois(unarchive(document), uid)
