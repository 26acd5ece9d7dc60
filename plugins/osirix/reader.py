"""Read OsiriX/Horos ROI exports into planar contours (one segment per ROI name).

Every variant is first normalised to a list of :class:`Roi` (name, type, points in mm
and/or pixels, the SOP Instance UID of the image when known), then placed in LPS mm:

* ``Point_mm`` / ``ROI3DPoints`` are DICOM patient coordinates already (Export ROIs XML,
  JSON and CSV; the OsiriX MD ROI-info JSON).
* Pixel points (ROI SR archives, Horos ROI-window XML) go through the image they were drawn
  on, with OsiriX's pixel-corner rule: pixel (0, 0) spans [0, 1) so its centre is at
  (0.5, 0.5), and ``mm = IPP + (x - 0.5)·Δc·row + (y - 0.5)·Δr·col`` (horos ``DCMPix.m``).
  The image is found in the ``reference`` series by its SOP Instance UID; the viewer's
  image index (``ImageIndex``, ``Slice``) is never trusted, it depends on the viewer's sort.

Closed ROI types (rectangle, oval, closed polygon, pencil, brush) become CLOSED_PLANAR
contours; points and open lines are kept as POINT / OPEN_PLANAR annotations and reported.

Exports are untrusted: the file is read as a regular file only; JSON and property lists
nested too deeply for the parsers, cyclic or fanned-out keyed archives, and the DICOM of a
ROI SR (deflated, deep, truncated) are one-line :class:`ReadError`; no export names a file
that segio reads.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import plistlib
import re
import warnings
import xml.parsers.expat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np
from numpy.typing import NDArray

from segio.colors import color_for_index
from segio.contours import Contour, ContourKind, PlanarContours
from segio.errors import ReadError, SegioError, one_line
from segio.geometry import Geometry
from segio.inputs import read_input
from segio.model import Segment, Segmentation
from segio.representations import Representation

from .register import sniff_csv

PathArg = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]

#: ToolMode values (horos ``DCMView.h``) whose ROI encloses a region.
CLOSED_TYPES = frozenset({6, 9, 11, 15, 20})
#: ToolMode values whose shape is a bitmap in archives (tPlain brush, tLayerROI).
BRUSH_TYPES = frozenset({20, 24})
#: ToolMode values that mark a single point (t3Dpoint, t2DPoint).
POINT_TYPES = frozenset({16, 19})
#: Type names of the ROI-info JSON (``DataSummary.Type``), lower case.
_CLOSED_NAMES = frozenset(
    {"closed polygon", "pencil", "brush", "oval", "rectangle", "roi", "cpolygon", "plain"}
)
_POINT_NAMES = frozenset({"point", "2d point", "3d point", "2dpoint", "3dpoint"})
_OPEN_NAMES = frozenset(
    {"open polygon", "opolygon", "length", "line", "measure", "angle", "dynamic angle"}
    | {"arrow", "text", "axis", "curved roi", "tagt"}
)
#: Points OsiriX puts on an oval (``CIRCLERESOLUTION`` in horos ``ROI.m``).
OVAL_POINTS = 200
SUPPORTED = (
    "the Export ROIs plugin output (XML, JSON or CSV), the ROI window's Export (XML or "
    "JSON) or the OsiriX ROI SR DICOM objects"
)
#: How far (mm) a contour may lie from the plane of the image it cites before a warning.
PLANE_TOLERANCE = 0.01
_NUMBER = re.compile(rb"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
#: What plistlib raises on a broken property list (its own exception wraps only some).
_PLIST_ERRORS = (
    plistlib.InvalidFileException,
    xml.parsers.expat.ExpatError,
    ValueError,
    OverflowError,
    IndexError,
)
#: Deepest object graph accepted in a keyed archive (a cycle or a bomb otherwise).
_MAX_DEPTH = 64
#: Most entries (ROIs and the arrays holding them) read from one keyed archive: an OsiriX
#: archive holds the ROIs of one image; shared nested arrays can fan out to billions.
_MAX_ITEMS = 100_000


@dataclass
class Roi:
    """One ROI of any variant, before placement."""

    name: str
    type: int | str | None
    points_mm: NDArray[np.float64] | None = None  # (N, 3) LPS
    points_px: NDArray[np.float64] | None = None  # (N, 2) x = column, y = row
    image_uid: str | None = None
    color: tuple[float, float, float] | None = None
    #: The viewer's image index (ROI-window exports): never used to place, only to notice
    #: ROIs that lie on several images.
    slice: int | None = None
    #: An archived brush: its shape is a bitmap segio does not decode.
    brush_bitmap: bool = False


# -- entry point ------------------------------------------------------------------------------


def read(path: Path, *, reference: PathArg | None = None) -> Segmentation:
    """Read any supported OsiriX/Horos ROI export; see the module docstring.

    Without ``reference`` the contours are the source representation (pixel-only variants
    then raise :class:`ReadError`: they cannot be placed). With it they are placed on that
    series and rasterised onto its grid.
    """
    path = Path(path)
    data = read_input(path)
    try:
        rois, variant = parse(data, path)
    except SegioError as exc:
        if exc.path is None:  # raised by a helper that does not know the file
            raise ReadError(exc.reason, path=path, hint=exc.hint) from exc
        raise
    except (
        ValueError,
        KeyError,
        TypeError,
        IndexError,
        AttributeError,
        OverflowError,
    ) as exc:
        raise ReadError(f"not a readable OsiriX ROI export: {exc}", path=path) from exc
    series = None
    if reference is not None:
        from segio.dicomseries import read_image_series

        series = read_image_series(reference)
    try:
        segmentation = build(rois, path, series)
    except SegioError as exc:
        if exc.path is None:
            raise ReadError(exc.reason, path=path, hint=exc.hint) from exc
        raise
    segmentation.provenance["osirix.variant"] = variant
    if series is None:
        return segmentation
    from segio.converters.contours import to_labelmap

    return to_labelmap(segmentation, series.geometry)


def parse(data: bytes, path: Path) -> tuple[list[Roi], str]:
    """The ROIs of any variant and the variant's name; ReadError for anything else."""
    head = data[:4096]
    if head.startswith(b"\x04\x0bstreamtyped"):
        raise ReadError(
            "this is a native OsiriX/Horos ROI archive (.roi/.rois_series, NSArchiver "
            "typedstream), which has no public specification and holds no image position",
            path=path,
            hint=f"export the ROIs from OsiriX/Horos instead: {SUPPORTED}",
        )
    if head[128:132] == b"DICM":
        return _sr_rois(data, path), "roi-sr"
    if sniff_csv(head):
        return _csv_rois(data, path), "export-rois-csv"
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if start[:1] in (b"{", b"["):
        document = bounded(
            lambda: json.loads(data.decode("utf-8-sig")),
            "the JSON",
            path,
            (UnicodeDecodeError, json.JSONDecodeError),
        )
        return _document_rois(document, path)
    if start.startswith((b"bplist00", b"<?xml", b"<!DOCTYPE", b"<plist")):
        document = bounded(lambda: plistlib.loads(data), "the property list", path, _PLIST_ERRORS)
        if isinstance(document, dict) and document.get("$archiver") == "NSKeyedArchiver":
            return _archive_rois(unarchive(document), None), "keyed-archive"
        return _document_rois(document, path)
    raise ReadError("not an OsiriX/Horos ROI export", path=path, hint=f"segio reads {SUPPORTED}")


def bounded(
    parse: Callable[[], Any],
    what: str,
    path: Path | None,
    errors: tuple[type[Exception], ...] = (),
) -> Any:
    """``parse()``; Python's recursion limit (a document nested thousands deep: JSON and
    binary plists are parsed recursively) and ``errors`` become a :class:`ReadError`.

    It is raised outside the handler, so no RecursionError or OverflowError (a lying
    binary plist offset) hangs behind it: the parser's failure is the file's fault.
    """
    try:
        return parse()
    except RecursionError:
        problem = "nests too deeply to read"
    except errors as exc:
        problem = f"is not valid: {one_line(exc) or type(exc).__name__}"
    raise ReadError(f"{what} {problem}", path=path)


# -- variants ---------------------------------------------------------------------------------


def parse_points(strings: Sequence[Any], n: int, what: str) -> NDArray[np.float64]:
    """``"(x, y, z)"``, ``"[x,y]"`` or ``"{x, y}"`` strings as an ``(N, n)`` array, at once."""
    if not isinstance(strings, list) or not all(isinstance(s, str) for s in strings):
        raise ReadError(f"{what} must be a list of point strings")
    text = " ; ".join(strings).encode()
    values = _NUMBER.findall(text)
    if len(values) != n * len(strings):
        raise ReadError(f"{what}: expected {n} numbers per point")
    return np.array(values, dtype=np.float64).reshape(-1, n)


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _document_rois(document: Any, path: Path) -> tuple[list[Roi], str]:
    """The ROIs of an Export ROIs document or of a ROI-window export (plist or JSON)."""
    if isinstance(document, dict) and isinstance(document.get("Images"), list):
        rois = []
        for image in document["Images"]:
            if not isinstance(image, dict):
                raise ReadError("an entry of Images is not a dictionary", path=path)
            for roi in image.get("ROIs") or []:
                rois.append(_export_roi(roi, image))
        return rois, "export-rois"
    if isinstance(document, dict) and isinstance(document.get("ROI array"), list):
        return [_info_roi(item) for item in document["ROI array"]], "roi-window"
    if isinstance(document, dict) and "ROIPoints" in document:
        return [_info_roi(document)], "roi-window"
    if isinstance(document, list) and all(isinstance(d, dict) for d in document):
        if document and not any("ROI3DPoints" in d or "ROIPoints" in d for d in document):
            raise ReadError(
                "a JSON list without ROI points", path=path, hint=f"segio reads {SUPPORTED}"
            )
        return [_info_roi(item) for item in document], "roi-info-json"
    raise ReadError("not an OsiriX/Horos ROI export", path=path, hint=f"segio reads {SUPPORTED}")


def _export_roi(roi: Any, image: dict[str, Any]) -> Roi:
    """One ROI of the Export ROIs plugin (``Point_mm`` strings, SOP UID in recent files)."""
    if not isinstance(roi, dict):
        raise ReadError("an entry of ROIs is not a dictionary")
    mm = roi.get("Point_mm") or []
    px = roi.get("Point_px") or []
    uid = _text(roi.get("SOPInstanceUID")) or _text(image.get("SOPInstanceUID")) or None
    kind = roi.get("Type")
    return Roi(
        name=_text(roi.get("Name")),
        type=int(kind) if _finite(kind) else None,
        points_mm=parse_points(mm, 3, "Point_mm") if mm else None,
        points_px=parse_points(px, 2, "Point_px") if px else None,
        image_uid=uid,
    )


def _finite(value: Any) -> TypeGuard[int | float]:
    """A JSON/plist number that is a usable ROI type (not a bool, NaN or Infinity)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _info_roi(item: Any) -> Roi:
    """One ROI of the ROI-window export: ``ROIPoints`` (+ ``ROI3DPoints`` in OsiriX MD)."""
    if not isinstance(item, dict):
        raise ReadError("a ROI entry is not a dictionary")
    found = item.get("DataSummary")
    summary: dict[str, Any] = found if isinstance(found, dict) else {}
    mm = item.get("ROI3DPoints") or []
    px = item.get("ROIPoints") or []
    name = _text(item.get("Name")) or _text(summary.get("Name"))
    kind = summary.get("Type")
    index = item.get("Slice")
    return Roi(
        name=name,
        type=kind if isinstance(kind, str | int) and not isinstance(kind, bool) else None,
        points_mm=parse_points(mm, 3, "ROI3DPoints") if mm else None,
        points_px=parse_points(px, 2, "ROIPoints") if px else None,
        slice=int(index) if _finite(index) else None,
    )


def _csv_rois(data: bytes, path: Path) -> list[Roi]:
    """The Export ROIs CSV: point groups ``mmX,mmY,mmZ,pxX,pxY`` after ``NumOfPoints``.

    The column is found by name (older versions have ``Length,Area`` instead of the four
    length/area columns), so the point block is located by counting, not by position.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    rows = list(csv.reader(io.StringIO(text), skipinitialspace=True))
    header = [cell.strip() for cell in rows[0]]
    try:
        name_at, type_at, count_at = (
            header.index(k) for k in ("RoiName", "RoiType", "NumOfPoints")
        )
    except ValueError as exc:
        raise ReadError(f"the CSV header lacks a column: {exc}", path=path) from exc
    rois = []
    for number, row in enumerate(rows[1:], start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        try:
            count = int(row[count_at])
            values = np.array(row[count_at + 1 : count_at + 1 + 5 * count], dtype=np.float64)
            kind = int(float(row[type_at]))
        except (ValueError, IndexError, OverflowError) as exc:
            raise ReadError(f"line {number}: {exc}", path=path) from exc
        if count < 0 or len(values) != 5 * count:
            raise ReadError(f"line {number}: fewer points than NumOfPoints says", path=path)
        block = values.reshape(-1, 5)
        rois.append(Roi(row[name_at].strip(), kind, block[:, :3], block[:, 3:]))
    return rois


# -- keyed archives and the ROI SR ---------------------------------------------------------------


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


def _archive_rois(archive: Any, image_uid: str | None) -> list[Roi]:
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
        rois.append(_archived_roi(item, image_uid))
    return rois


def _archived_roi(item: dict[str, Any], image_uid: str | None) -> Roi:
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


def _sr_rois(data: bytes, path: Path) -> list[Roi]:
    """The ROIs archived in an OsiriX ROI SR, on the image its IMAGE item references."""
    from segio.dicomseries import read_dataset

    ds = read_dataset(path, data=data, force=True)
    try:
        payload = ds.get((0x0042, 0x0011)) or ds.get((0x0071, 0x0011))
        uid = None
        for item in ds.get("ContentSequence", []) or []:
            if str(item.get("ValueType", "")) == "IMAGE" and item.get("ReferencedSOPSequence"):
                uid = str(item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID)
                break
        payload_bytes = payload.value if payload is not None else None
    except Exception as exc:  # pydicom raises many types on damaged files
        raise ReadError(f"not a readable DICOM object: {exc}", path=path) from exc
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
    return _archive_rois(unarchive(document), uid)


# -- placement and the segmentation ----------------------------------------------------------


def kind_of(roi: Roi, count: int) -> ContourKind:
    """CLOSED_PLANAR for region types, POINT or OPEN_PLANAR for the rest."""
    kind = roi.type
    if isinstance(kind, str):
        lowered = kind.strip().lower()
        if lowered in _CLOSED_NAMES:
            closed = True
        elif lowered in _POINT_NAMES:
            return ContourKind.POINT
        elif lowered in _OPEN_NAMES:
            closed = False
        else:  # an unknown name: as Horos re-imports, by the number of points
            closed = count >= 3
    elif kind is None:
        closed = count >= 3
    elif kind in POINT_TYPES:
        return ContourKind.POINT
    else:
        closed = kind in CLOSED_TYPES
    if closed and count >= 3:
        return ContourKind.CLOSED_PLANAR
    return ContourKind.POINT if count == 1 else ContourKind.OPEN_PLANAR


def _uid_slices(series: Any) -> dict[str, int | None]:
    """SOP Instance UID -> slice k; None for a multi-frame instance (ROIs name no frame)."""
    result: dict[str, int | None] = {}
    for k, frame in enumerate(series.frames):
        if frame is not None:
            uid = frame.sop_instance_uid
            result[uid] = None if uid in result else k
    return result


def place(roi: Roi, series: Any, path: Path, slices: dict[str, int | None]) -> NDArray[np.float64]:
    """The ROI's points in LPS mm (see the module docstring for the rules)."""
    if roi.points_mm is not None and len(roi.points_mm):
        return roi.points_mm
    if roi.points_px is None or not len(roi.points_px):
        return np.zeros((0, 3))
    if series is None:
        raise ReadError(
            "these ROIs hold pixel coordinates only; they can be placed only on the image "
            "they were drawn on",
            path=path,
            hint="pass reference=<the image series> (-O reference=series/)",
        )
    geometry: Geometry = series.geometry
    if roi.image_uid is not None:
        if roi.image_uid not in slices:
            raise ReadError(
                f"ROI {roi.name!r} was drawn on image {roi.image_uid}, which is not in the "
                "reference series",
                path=path,
                hint="pass the series that holds that image",
            )
        found = slices[roi.image_uid]
        if found is None:
            raise ReadError(
                f"ambiguous image reference: ROI {roi.name!r} cites image {roi.image_uid}, "
                "a multi-frame instance, without a frame number",
                path=path,
                hint="pass the single frame (or a single-frame series) it was drawn on",
            )
        k = found
    elif geometry.shape[0] == 1:
        k = 0
    else:
        raise ReadError(
            "this export names no image for its pixel coordinates (the viewer's slice "
            "number depends on its sort order, so segio does not use it)",
            path=path,
            hint="pass reference=<the one image file the ROI was drawn on>",
        )
    px = roi.points_px
    ijk = np.column_stack([px[:, 0] - 0.5, px[:, 1] - 0.5, np.full(len(px), float(k))])
    return geometry.ijk_to_points(ijk)


def _check_one_image(rois: list[Roi], series: Any, path: Path) -> None:
    """ReadError when pixel-only ROIs of a ROI-window export lie on several images.

    Their viewer index (``Slice``) is not trusted to place them, but distinct values do
    say they were drawn on distinct images: on a one-image reference they would all be
    piled onto it (spec §1.4).
    """
    if series is None or series.geometry.shape[0] != 1:
        return
    indices = {
        roi.slice
        for roi in rois
        if roi.slice is not None and roi.image_uid is None and roi.points_mm is None
    }
    if len(indices) > 1:
        raise ReadError(
            f"the ROIs span several images (Slice {', '.join(map(str, sorted(indices)))}) "
            "but the reference is one image",
            path=path,
            hint="export the ROIs of one image at a time, or use Export ROIs (which names "
            "each image)",
        )


def build(rois: list[Roi], path: Path, series: Any = None) -> Segmentation:
    """One segment per ROI name (first-seen order), its ROIs as contours in LPS mm."""
    by_name: dict[str, list[Contour]] = {}
    colors: dict[str, tuple[float, float, float]] = {}
    annotations = empty = off_plane = brushes = duplicates = 0
    slices = _uid_slices(series) if series is not None else {}
    _check_one_image(rois, series, path)
    seen: set[tuple[str, str | None, bytes]] = set()
    for roi in rois:
        name = roi.name or "Unnamed"
        by_name.setdefault(name, [])
        if roi.brush_bitmap:
            brushes += 1
            continue
        points = place(roi, series, path, slices)
        if not len(points):
            empty += 1
            continue
        # Fused viewers export the same ROI twice; under even-odd the copies would cancel.
        key = (name, roi.image_uid, np.round(points, 3).tobytes())
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        kind = kind_of(roi, len(points))
        if kind is not ContourKind.CLOSED_PLANAR:
            annotations += 1
        drawn_on = slices.get(roi.image_uid) if roi.image_uid is not None else None
        if series is not None and drawn_on is not None:
            k = series.geometry.points_to_ijk(points)[:, 2] - drawn_on
            if float(np.max(np.abs(k))) * float(series.geometry.spacing[2]) > PLANE_TOLERANCE:
                off_plane += 1
        by_name[name].append(Contour(points, kind, roi.image_uid))
        if roi.color is not None:
            colors.setdefault(name, roi.color)
    if not by_name:
        raise ReadError("the export holds no ROI", path=path)
    if empty:
        warnings.warn(f"{path.name}: {empty} ROI(s) without points skipped", stacklevel=3)
    if brushes:
        warnings.warn(
            f"{path.name}: {brushes} brush ROI(s) skipped: brush bitmap not decoded (the "
            "archive stores a brush as a bitmap, whose layout is not public)",
            stacklevel=3,
        )
    if duplicates:
        warnings.warn(
            f"{path.name}: {duplicates} duplicate ROI(s) (same name, image and points, as "
            "fused viewers export them) dropped; they would cancel out under even-odd",
            stacklevel=3,
        )
    if annotations:
        warnings.warn(
            f"{path.name}: {annotations} point/line ROI(s) kept as annotations "
            "(POINT/OPEN_PLANAR contours, not part of any volume)",
            stacklevel=3,
        )
    cited = {roi.image_uid for roi in rois if roi.image_uid}
    if series is not None and cited and not cited & slices.keys():
        warnings.warn(
            f"{path.name}: the ROIs cite images that are not in the reference series; "
            "they are placed by their coordinates",
            stacklevel=3,
        )
    if off_plane:
        warnings.warn(
            f"{path.name}: {off_plane} ROI(s) lie more than {PLANE_TOLERANCE} mm from the "
            "plane of the image they cite; they are placed by their coordinates",
            stacklevel=3,
        )
    segments, contours = [], {}
    for index, (name, items) in enumerate(by_name.items()):
        segment_id = f"Segment_{index + 1}"
        segments.append(Segment(segment_id, name, colors.get(name, color_for_index(index))))
        contours[segment_id] = PlanarContours(items)
    provenance = {}
    if series is not None:
        provenance["ReferencedSeriesInstanceUID"] = series.series_instance_uid
    return Segmentation(
        segments,
        source_representation=Representation.PLANAR_CONTOURS,
        contours=contours,
        provenance=provenance,
        reference_geometry=series.geometry if series is not None else None,
    )
