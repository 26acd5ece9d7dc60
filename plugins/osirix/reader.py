"""Read OsiriX/Horos ROI exports into planar contours (one segment per ROI name).

Every variant is first normalised to a list of :class:`Roi` (name, type, points in mm
and/or pixels, the SOP Instance UID of the image when known: :mod:`.rois`), then placed
in LPS mm (:mod:`.placement`): ``Point_mm`` / ``ROI3DPoints`` are patient coordinates
already; pixel points (ROI SR archives, Horos ROI-window XML) go through the image they
were drawn on, found in the ``reference`` series by its SOP Instance UID.

A folder is read as the "OsiriX ROI SR" objects it holds (OsiriX keeps one per image, MD
13 one per ROI, in a hidden series): all their ROIs make one segmentation, the ROIs of one
name on several images one segment. Without ``reference`` such ROIs cannot be placed; they
are then listed (``segio info``) but not converted (:data:`segio.model.UNPLACED`).

Closed ROI types (rectangle, oval, closed polygon, pencil, brush) become CLOSED_PLANAR
contours; point ROIs become point annotations (:mod:`segio.points`); open lines are kept as
OPEN_PLANAR annotations of their segment and reported.

Exports are untrusted: files are read as regular files only (in a folder, only those inside
it: :func:`segio.fileio.inputs.folder_files`); JSON and property lists nested too deeply for the
parsers, cyclic or fanned-out keyed archives, and the DICOM of a ROI SR (deflated, deep,
truncated) are one-line :class:`ReadError`; no export names a file that segio reads.
"""

from __future__ import annotations

import csv
import io
import json
import os
import plistlib
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from segio.errors import ReadError, reading
from segio.fileio.inputs import folder_files, open_input, read_input
from segio.model import Segmentation

from .archive import archive_rois, sr_rois, unarchive
from .placement import build
from .register import sniff_csv, sniff_sr
from .rois import (
    _PLIST_ERRORS,
    SUPPORTED,
    Roi,
    _finite,
    _text,
    bounded,
    kind_of,
    parse_points,
)

__all__ = ["Roi", "build", "kind_of", "parse", "parse_points", "read"]

PathArg = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
#: What a broken export makes the variant parsers raise, turned into a ReadError.
_PARSE_ERRORS = (ValueError, KeyError, TypeError, IndexError, AttributeError, OverflowError)


# -- entry point ------------------------------------------------------------------------------


def read(path: Path, *, reference: PathArg | None = None) -> Segmentation:
    """Read any supported OsiriX/Horos ROI export, or a folder of ROI SR objects.

    Without ``reference`` the contours are the source representation; ROIs in pixel
    coordinates only (ROI SR, Horos ROI-window XML) are listed but not placed (the
    segmentation cannot be written). With it they are placed on that series and rasterised
    onto its grid; point ROIs stay point annotations either way.
    """
    path = Path(path)
    rois, variant = _folder_rois(path) if path.is_dir() else _file_rois(path)
    series = None
    if reference is not None:
        from segio.dicom.series import read_image_series

        series = read_image_series(reference)
    with reading(path, "OsiriX ROI export", catch=()):
        segmentation = build(rois, path, series)
    segmentation.provenance["osirix.variant"] = variant
    if series is None:
        return segmentation
    from segio.converters.contours_to_labelmap import to_labelmap

    labelmap = to_labelmap(segmentation, series.geometry)
    labelmap.points = segmentation.points
    return labelmap


def _file_rois(path: Path) -> tuple[list[Roi], str]:
    """The ROIs of one export file; every failure a ReadError naming it."""
    data = read_input(path)
    with reading(path, "OsiriX ROI export", catch=_PARSE_ERRORS):
        return parse(data, path)


def _folder_rois(folder: Path) -> tuple[list[Roi], str]:
    """The ROIs of every OsiriX ROI SR object in ``folder`` (and below), in file order.

    Other files (the images, a DICOMDIR) are left out and counted in a warning.
    """
    rois: list[Roi] = []
    found = others = 0
    for file in folder_files(folder):
        with open_input(file) as stream:
            head = stream.read(4096)
        if not sniff_sr(head):
            others += 1
            continue
        found += 1
        rois += _file_rois(file)[0]
    if not found:
        raise ReadError(
            "no OsiriX ROI SR object in this folder",
            path=folder,
            hint=f"segio reads a folder of ROI SR objects, or one of {SUPPORTED}",
        )
    if others:
        warnings.warn(
            f"{folder.name}: {others} file(s) that are not OsiriX ROI SR objects left out",
            stacklevel=3,
        )
    return rois, "roi-sr-folder"


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
        return sr_rois(data, path), "roi-sr"
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
            return archive_rois(unarchive(document), None), "keyed-archive"
        return _document_rois(document, path)
    raise ReadError("not an OsiriX/Horos ROI export", path=path, hint=f"segio reads {SUPPORTED}")


# -- variants ---------------------------------------------------------------------------------


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
