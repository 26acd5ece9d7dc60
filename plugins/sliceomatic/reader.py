"""Read SliceOmatic ``.tag`` files (one file, or a folder of per-image tags) as a labelmap.

Geometry: the header's values are rounded to 4 decimals, so the companion DICOM image is
preferred when it is there (``<name>.dcm`` next to ``<name>.dcm.tag``, or ``<stem>.dcm``
next to ``<stem>.tag``), or the ``reference`` series when given; the header is the
fallback, and a consistency check (a warning beyond 0.01 mm). Label names are not in the
file: they come from a label table (``labels``), a preset (``preset``), else ``Label_<n>``.

A companion named by a tag's own name is a file the tag refers to: it must be a regular
file in the tag's folder (:func:`segio.fileio.inputs.referenced_file`), never a link out of it or
a FIFO; a folder of tags holds only its regular files (:func:`segio.fileio.inputs.folder_files`).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segio.colors import color_for_index
from segio.errors import GeometryError, ReadError, SegioError, reading
from segio.fileio.inputs import folder_files, open_input, read_input, referenced_file
from segio.fileio.streams import is_spooled
from segio.geometry import Geometry, slice_grid
from segio.labels.tables import LabelEntry
from segio.model import Layer, Segment, Segmentation

from .register import sniff
from .tagfile import PRESETS, TagHeader, decode, image_chksum

PathArg = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
#: Header and image origins may differ by this much (mm) before a warning (4-decimal rounding).
HEADER_TOLERANCE = 0.01


def read(
    path: Path,
    *,
    reference: PathArg | None = None,
    labels: str | os.PathLike[str] | None = None,
    preset: str | None = None,
) -> Segmentation:
    """Read a ``.tag`` file, or every ``.tag`` in a folder stacked by position."""
    path = Path(path)
    names = label_names(labels, preset, path)
    series = _series(reference) if reference is not None else None
    if path.is_dir():
        tags = [p for p in folder_files(path, recursive=False) if _is_tag(p)]
        if not tags:
            raise ReadError("no SliceOmatic .tag file in this folder", path=path)
    else:
        tags = [path]
    pieces = [_read_one(tag, series) for tag in tags]
    grid, array = _stack(pieces, series, path)
    segmentation = _segmentation(array, grid, names)
    segmentation.provenance["sliceomatic.files"] = str(len(tags))
    segmentation.provenance["sliceomatic.header"] = json.dumps(
        {tag.name: {"fields": h.fields, "comments": h.comments} for tag, h, _, _ in pieces}
    )
    return segmentation


def _is_tag(path: Path) -> bool:
    if path.name.lower().endswith(".tag"):
        return True
    try:
        with open_input(path) as stream:
            return sniff(stream.read(4096))
    except (OSError, SegioError):
        return False


def label_names(
    labels: str | os.PathLike[str] | None, preset: str | None, path: Path
) -> dict[int, LabelEntry]:
    """label value -> its entry, from a preset and then a table file (the table wins)."""
    result: dict[int, LabelEntry] = {}
    if preset is not None:
        key = str(preset).strip().lower()
        if key not in PRESETS:
            raise ReadError(
                f"unknown label preset {preset!r}",
                path=path,
                hint=f"use one of {', '.join(sorted(PRESETS))}, or -I labels=FILE "
                "(labels= in Python)",
            )
        result.update(
            (value, LabelEntry(value, name, color, terminology=terminology))
            for value, (name, color, terminology) in PRESETS[key].items()
        )
    if labels is not None:
        from segio.labels.tables import read_label_table

        result.update((entry.value, entry) for entry in read_label_table(labels))
    return result


def _series(reference: PathArg) -> Any:
    from segio.dicom.series import read_image_series

    return read_image_series(reference)


def companion(tag: Path) -> Path | None:
    """The DICOM image a tag belongs to by SliceOmatic's naming conventions, if present.

    The name comes from the tag, so the image is a file the tag refers to: one that is not
    a regular file in the tag's folder (a link out of it, a FIFO) is not taken, with a
    warning.
    """
    if is_spooled(tag):
        warnings.warn(
            "a SliceOmatic tag read from a stream or bytes has no companion DICOM image beside "
            "it; the tag's own geometry is used (pass reference= with the image to place it)",
            stacklevel=3,
        )
        return None
    name = tag.name
    candidates = []
    if name.lower().endswith(".tag"):
        base = name[:-4]  # <image>.dcm.tag -> <image>.dcm
        candidates.append(base)
        if not base.lower().endswith(".dcm"):
            candidates.append(base + ".dcm")  # <stem>.tag -> <stem>.dcm
    for candidate in candidates:
        place = tag.with_name(candidate)
        if candidate == name or not (place.exists() or place.is_symlink()):
            continue
        try:
            return referenced_file(tag, candidate, what="the companion image")
        except ReadError as exc:
            warnings.warn(f"{exc}; the tag's own geometry is used", stacklevel=3)
    return None


def _read_one(tag: Path, series: Any) -> tuple[Path, TagHeader, NDArray[np.integer], Geometry]:
    """One file: header, labels and its best geometry (series, companion, else header)."""
    with reading(tag, "SliceOmatic tag", catch=()):
        header, labels = decode(read_input(tag), tag.name)
        own = header.geometry()
    if series is not None:
        return tag, header, labels, own
    image = companion(tag)
    if image is None:
        return tag, header, labels, own
    try:
        grid = _series([image]).geometry
    except SegioError:
        return tag, header, labels, own
    if grid.shape != labels.shape:
        warnings.warn(
            f"{tag.name}: its companion {image.name} is {grid.shape[::-1]} pixels, the tag "
            f"{labels.shape[::-1]}; using the header geometry",
            stacklevel=4,
        )
        return tag, header, labels, own
    _check_header(tag, own, grid)
    _check_chksum(tag, header, image)
    return tag, header, labels, grid


def _check_chksum(tag: Path, header: TagHeader, image: Path) -> None:
    """Warn when ``chksum`` (sum of the image's stored pixels) names another image."""
    text = header.fields.get("chksum")
    if not text:
        return
    try:
        expected = int(text, 16)
    except ValueError:
        warnings.warn(f"{tag.name}: chksum:{text} is not hexadecimal", stacklevel=5)
        return
    actual = image_chksum(image)
    if actual is not None and actual != expected:
        warnings.warn(
            f"{tag.name}: chksum {expected:08X} does not match {image.name} ({actual:08X}); "
            "the tag may have been drawn on another image",
            stacklevel=5,
        )


def _check_header(tag: Path, own: Geometry, grid: Geometry) -> None:
    """Warn when the header describes another plane than the image (beyond its rounding).

    Header values have 4 decimals: the origin agrees within :data:`HEADER_TOLERANCE`; the
    far corner may drift by 1e-4 mm per pixel more (rounded spacing and cosines).
    """
    far = [own.shape[2] - 1, own.shape[1] - 1, 0]
    origin_gap = float(np.max(np.abs(own.origin - grid.origin)))
    corner_gap = float(np.max(np.abs(own.ijk_to_points(far) - grid.ijk_to_points(far))))
    if origin_gap > HEADER_TOLERANCE or corner_gap > HEADER_TOLERANCE + 1e-4 * max(far):
        warnings.warn(
            f"{tag.name}: the header geometry is up to {max(origin_gap, corner_gap):.3g} mm "
            "off the image's; using the image's",
            stacklevel=5,
        )


def image_slices(series: Any) -> list[tuple[Path, int]]:
    """Each single-frame image file of the series with its slice k, in slice order.

    The slice comes from the series' own frame table, not from file order or a second
    geometry computation; multi-frame files are left out (one tag per image file cannot
    name one of their frames).
    """
    return [
        (frame.file, k)
        for k, frame in enumerate(series.frames)
        if frame is not None and frame.frame_number is None and frame.file is not None
    ]


def _by_position(tag: Path, header: TagHeader, own: Geometry, grid: Geometry, depth: int) -> int:
    """The slice of ``grid`` the tag's header places it on; GeometryError when on none.

    The header is rounded to 4 decimals, so a tenth of a voxel is plenty of tolerance.
    """
    if "org_x" not in header.fields:
        if grid.shape[0] == 1:
            return 0
        raise GeometryError(
            "the tag is named after no reference image and its header has no position",
            path=tag,
            hint="name it <image file>.tag",
        )
    ijk = grid.points_to_ijk(own.origin)
    k0 = round(float(ijk[2]))
    parallel = np.allclose(own.direction[:, :2], grid.direction[:, :2], atol=1e-3)
    inside = 0 <= k0 <= grid.shape[0] - depth
    if not (parallel and inside) or abs(ijk[2] - k0) > 0.1 or max(abs(ijk[0]), abs(ijk[1])) > 0.1:
        raise GeometryError(
            "the tag lies on no image of the reference series",
            path=tag,
            hint="pass the series the tag was drawn on",
        )
    return k0


def _stack(
    pieces: list[tuple[Path, TagHeader, NDArray[np.integer], Geometry]],
    series: Any,
    where: Path,
) -> tuple[Geometry, NDArray[np.integer]]:
    """One grid and labelmap for every file: the series grid, or the files' own positions."""
    dtype = np.result_type(*(p[2].dtype for p in pieces))
    if series is None and len(pieces) == 1:
        return pieces[0][3], pieces[0][2]
    if series is not None:
        grid = series.geometry
        by_name = (
            {f.name: k for f, k in image_slices(series)}
            if len(pieces) > 1 or grid.shape[0] > 1
            else {}
        )
        array = np.zeros(grid.shape, dtype=dtype)
        filled: set[int] = set()
        for tag, header, labels, own in pieces:
            if labels.shape[1:] != grid.shape[1:]:
                raise GeometryError(
                    f"the tag is {labels.shape[2]}x{labels.shape[1]} pixels, the reference "
                    f"images {grid.shape[2]}x{grid.shape[1]}",
                    path=tag,
                )
            image = companion(tag)
            name = tag.name[:-4] if tag.name.lower().endswith(".tag") else tag.name
            names = [name, name + ".dcm", image.name if image is not None else ""]
            known = [by_name[n] for n in names if n in by_name]
            if known:  # by file name (<image>.tag, <stem>.tag): the header is only checked
                k0 = known[0]
                if "org_x" in header.fields and 0 <= k0 <= grid.shape[0] - labels.shape[0]:
                    _check_header(tag, own, grid.cropped((k0, 0, 0), labels.shape))
            else:
                k0 = _by_position(tag, header, own, grid, labels.shape[0])
            if not 0 <= k0 <= grid.shape[0] - labels.shape[0]:
                raise GeometryError("the tag lies outside the reference series", path=tag)
            occupied = set(range(k0, k0 + labels.shape[0]))
            if occupied & filled:
                raise GeometryError(
                    "this tag and another one lie on the same image of the reference series",
                    path=tag,
                    hint="keep one tag per image",
                )
            filled |= occupied
            array[k0 : k0 + labels.shape[0]] = labels
        return grid, array

    first = pieces[0][3]
    positions, shapes = [], []
    for tag, _, labels, own in pieces:
        if (
            labels.shape[1:] != first.shape[1:]
            or not np.allclose(own.direction, first.direction, atol=1e-4)
            or not np.allclose(own.spacing[:2], first.spacing[:2], rtol=1e-4)
        ):
            raise GeometryError(
                "the tags in this folder are not slices of one image series", path=tag
            )
        positions += [own.ijk_to_points([0, 0, k]) for k in range(labels.shape[0])]
        shapes.append(labels.shape[0])
    spacing = first.spacing
    orientation = np.concatenate([first.direction[:, 0], first.direction[:, 1]])
    grid, slots = slice_grid(
        positions,
        orientation,
        (float(spacing[1]), float(spacing[0])),
        first.shape[1:],
        default_spacing=float(spacing[2]),
    )
    if len(set(slots.tolist())) != len(slots):
        raise GeometryError("two tags in this folder lie on the same slice", path=where)
    array = np.zeros(grid.shape, dtype=dtype)
    flat = np.concatenate([p[2] for p in pieces])
    array[slots] = flat
    return grid, array


def _segmentation(
    array: NDArray[np.integer], grid: Geometry, names: dict[int, LabelEntry]
) -> Segmentation:
    """One segment per label value present (and per named value), in value order."""
    counts = np.bincount(array.ravel(), minlength=int(array.max(initial=0)) + 1)
    values = sorted({int(v) for v in np.flatnonzero(counts) if v > 0} | set(names))
    segments: list[Segment] = []
    for index, value in enumerate(values):
        entry = names.get(value)
        if entry is None:
            segments.append(
                Segment(
                    f"Label_{value}", f"Label_{value}", color_for_index(index), label_value=value
                )
            )
            continue
        taken = {s.id for s in segments}
        segment_id = entry.id if entry.id and entry.id not in taken else f"Label_{value}"
        segments.append(
            Segment(
                segment_id,
                entry.name,
                entry.color or color_for_index(index),
                terminology=entry.terminology,
                label_value=value,
                properties=dict(entry.properties),
            )
        )
    return Segmentation(segments, [Layer(array, grid)])
