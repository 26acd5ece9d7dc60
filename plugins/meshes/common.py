"""What every mesh format shares: segments as named coloured meshes, options, errors.

Writers see a segmentation as a list of :class:`Part` (one per segment, in order): the
surface in the file's coordinate system, plus name, colour and opacity. Readers build
parts back and :func:`to_segmentation` turns them into segments. Parsing errors of any
kind become one :class:`ReadError` naming the file (:func:`segio.errors.reading`), so a
truncated or corrupt mesh never shows a traceback.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np
from numpy.typing import NDArray

import segio.options as options
from segio.colors import color_for_index
from segio.errors import ReadError, ValidationError
from segio.fileio.inputs import open_input, referenced_file
from segio.fileio.limits import check_allocation, check_payload
from segio.geometry import Geometry
from segio.model import Segment, Segmentation, unique_id
from segio.representations import Representation
from segio.surfaces import LPS_TO_RAS, OPACITY, Surface, parse_opacity
from segio.terminology import Terminology

#: Segment property holding the display opacity (0..1) that OBJ, glTF and VTK store.
SPACES = ("lps", "ras")
#: Characters that cannot be in a file name on some system (Slicer leaves names as they are).
_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f]')
_SPACE_TAG = re.compile(rb"SPACE=(LPS|RAS)", re.IGNORECASE)


@dataclass
class Part:
    """One segment as a mesh format sees it."""

    name: str
    surface: Surface
    color: tuple[float, float, float] | None = None
    opacity: float | None = None
    id: str | None = None
    terminology: Terminology | None = None
    extras: dict[str, str] = field(default_factory=dict)


def flag(value: object, option: str) -> bool:
    """A boolean option given as bool or text (``-O merge=true``)."""
    result = options.flag(value)
    if result is None:
        raise ValidationError(f"option {option} must be true or false, got {value!r}")
    return result


def choice(value: object, option: str, allowed: Sequence[str]) -> str:
    found = options.choice(value, allowed)
    if found is None:
        raise ValidationError(f"option {option} must be one of {', '.join(allowed)}, got {value!r}")
    return found


def space_matrix(space: str) -> NDArray[np.float64]:
    """LPS -> the file's space (and back: both matrices are their own inverse)."""
    return LPS_TO_RAS if space == "ras" else np.eye(4)


def space_in(header: bytes, default: str = "lps") -> str:
    """Slicer's ``SPACE=LPS|RAS`` tag in a header or comment (Mimics' convention)."""
    found = _SPACE_TAG.search(header)
    return found.group(1).decode().lower() if found else default


def parts_of(segmentation: Segmentation, space: str = "lps") -> list[Part]:
    """The segments as parts, their surfaces moved from LPS to ``space`` (lps or ras)."""
    if segmentation.source_representation is not Representation.CLOSED_SURFACE:
        raise ValidationError("mesh writers take closed surfaces; convert the segmentation first")
    matrix = space_matrix(space)
    parts = []
    for segment in segmentation.segments.values():
        surface = segmentation.surfaces[segment.id]
        if space != "lps":
            surface = surface.transformed(matrix)
        opacity = segment.properties.get(OPACITY)
        parts.append(
            Part(
                name=segment.name,
                surface=surface,
                color=segment.color,
                opacity=parse_opacity(opacity, segment.id),
                id=segment.id,
                terminology=segment.terminology,
            )
        )
    return parts


def to_segmentation(
    parts: Sequence[Part],
    path: Path,
    *,
    space: str = "lps",
    reference: str | os.PathLike[str] | None = None,
) -> Segmentation:
    """Segments from parts read in ``space``; ``reference`` gives the grid for labelmaps."""
    if not parts or all(part.surface.is_empty for part in parts):
        raise ReadError(
            "the file holds no triangle",
            path=path,
            hint="a closed surface needs at least one triangle; check the export",
        )
    matrix = space_matrix(space)
    segments: list[Segment] = []
    surfaces: dict[str, Surface] = {}
    taken: dict[str, Segment] = {}
    for n, part in enumerate(parts):
        wanted = part.id or f"Segment_{n + 1}"
        segment_id = wanted if wanted not in taken else unique_id(wanted, taken)
        properties = dict(part.extras)
        if part.opacity is not None and part.opacity != 1.0:
            properties[OPACITY] = repr(float(part.opacity))
        segment = Segment(
            id=segment_id,
            name=part.name or f"Segment_{n + 1}",
            color=part.color if part.color is not None else color_for_index(n),
            terminology=part.terminology,
            label_value=n + 1,
            properties=properties,
        )
        taken[segment_id] = segment
        segments.append(segment)
        surfaces[segment_id] = part.surface if space == "lps" else part.surface.transformed(matrix)
    geometry = reference_geometry(reference) if reference is not None else None
    return Segmentation(
        segments,
        source_representation=Representation.CLOSED_SURFACE,
        surfaces=surfaces,
        reference_geometry=geometry,
        provenance={"coordinate_system": space.upper()},
    )


def reference_geometry(reference: str | os.PathLike[str]) -> Geometry:
    """The grid of ``reference``: a DICOM series (folder or file), or any image segio reads
    (:func:`segio.reference.read_reference`)."""
    from segio.reference import read_reference

    return read_reference(reference).geometry


def whole_numbers(tokens: Sequence[Any], what: str) -> NDArray[np.int64]:
    """Text tokens as int64; one too large is a ValidationError (raised outside the
    OverflowError's handler, so no overflow is chained behind the message)."""
    try:
        values: NDArray[np.int64] | None = np.array(tokens, dtype=np.int64)
    except OverflowError:
        values = None
    if values is None:
        raise ValidationError(f"{what} is too large for a 64-bit integer")
    return values


def load_json(text: str | bytes, what: str) -> Any:
    """Parse JSON from a mesh file (segio's metadata, a glTF document).

    JSON nested deeper than the parser recurses is a ValidationError of its own, raised
    outside the RecursionError's handler so that no RecursionError is chained behind it.
    """
    try:
        return json.loads(text)
    except RecursionError:
        pass
    raise ValidationError(f"the {what} nests too deep to be read")


def read_file(path: Path) -> bytes:
    """The bytes of the mesh file itself: a regular file, no larger than the memory limit."""
    with open_input(path) as stream:
        check_allocation(os.fstat(stream.fileno()).st_size, "reading the file", path=path)
        return stream.read()


def read_reference(
    container: Path, reference: str, *, what: str, url: bool = False, size: int | None = None
) -> bytes:
    """The bytes of a file that ``container`` names inside itself (glTF buffer, MTL).

    :func:`segio.fileio.inputs.referenced_file` refuses anything outside ``container``'s folder,
    URLs and non-regular files before anything is opened. ``size`` is what the container
    declares the file holds: the file must hold that much and only that much is read;
    without it the whole file is read, within the memory limit.
    """
    target = referenced_file(container, reference, what=what, url=url)
    with open_input(target, what=what) as stream:
        available = os.fstat(stream.fileno()).st_size
        if size is None:
            check_allocation(available, what, path=container)
            return stream.read(available)
        check_payload(size, available, what, path=container)
        return stream.read(size)


def xml_root(text: bytes, what: str) -> ElementTree.Element:
    """Parse the XML of a mesh file (VTK XML, 3MF model); a DTD is refused.

    Neither format uses a document type declaration, and one is how XML asks for entity
    expansion (a few hundred bytes that expand to gigabytes) or for external entities
    (another file's content), so it is refused before parsing rather than trusted to the
    parser's defences.
    """
    if b"<!DOCTYPE" in text or b"<!ENTITY" in text:
        raise ValidationError(
            f"the {what} declares a document type or entities, which it never needs "
            "(XML entity expansion is refused)"
        )
    return ElementTree.fromstring(text)


def part_metadata(part: Part) -> dict[str, Any]:
    """segio's own per-segment JSON (PLY comment, VTK field data, 3MF metadata): what the
    format has no place for, read back by :func:`part_from_metadata`."""
    return {
        "name": part.name,
        "id": part.id,
        "terminology": part.terminology.to_slicer() if part.terminology else None,
        "color": list(part.color or (1.0, 1.0, 1.0)),
        "opacity": part.opacity,
    }


def part_from_metadata(meta: dict[str, Any], surface: Surface) -> Part:
    """A Part from segio's own per-segment JSON (PLY comment, VTK field data)."""
    color = meta.get("color")
    term = meta.get("terminology")
    opacity, segment_id = checked_metadata(meta.get("opacity"), meta.get("id"))
    return Part(
        name=str(meta.get("name") or ""),
        surface=surface,
        color=None if color is None else (float(color[0]), float(color[1]), float(color[2])),
        opacity=opacity,
        id=segment_id,
        terminology=Terminology.from_slicer(term) if term else None,
    )


def checked_metadata(opacity: object, segment_id: object) -> tuple[float | None, str | None]:
    """Opacity (a number in 0..1) and segment id (text) as a file's metadata gives them.

    Files are edited by hand and by other tools: a wrong type must become a ReadError (the
    caller runs inside :func:`segio.errors.reading`), not a TypeError later in
    :func:`to_segmentation`.
    """
    value: float | None = None
    if opacity is not None:
        if isinstance(opacity, bool) or not isinstance(opacity, (int, float, str)):
            raise ValidationError(f"opacity must be a number in 0..1, got {opacity!r}")
        try:
            value = float(opacity)
        except ValueError:
            raise ValidationError(f"opacity must be a number in 0..1, got {opacity!r}") from None
        if not 0.0 <= value <= 1.0:  # also rejects NaN
            raise ValidationError(f"opacity must be a number in 0..1, got {opacity!r}")
    if segment_id is not None and not isinstance(segment_id, str):
        raise ValidationError(f"a segment id must be text, got {segment_id!r}")
    return value, segment_id or None


def checked_surface(vertices: Any, faces: Any, path: Path, what: str) -> Surface:
    """A Surface from parsed arrays; out-of-range indices become a ReadError."""
    try:
        return Surface(vertices, faces)
    except ValidationError as exc:
        raise ReadError(f"invalid {what} mesh: {exc}", path=path) from exc


def welded(triangles: NDArray[np.floating[Any]]) -> tuple[NDArray[Any], NDArray[np.int64]]:
    """Shared vertices from a triangle soup ``(M, 3, 3)`` (STL): exact duplicates merged."""
    points = np.ascontiguousarray(triangles.reshape(-1, 3)) + 0.0  # -0.0 becomes 0.0
    if not len(points):
        return points, np.zeros((0, 3), np.int64)
    # Rows as opaque byte strings: a 1-D unique, three times faster than unique(axis=0).
    rows = points.view(np.dtype((np.void, points.itemsize * 3))).ravel()
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    return points[first], inverse.reshape(-1, 3).astype(np.int64)


def polygon_triangles(
    counts: NDArray[np.int64], ids: NDArray[np.int64], *, strips: bool = False
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Triangles of polygons given as vertex counts and their concatenated vertex ids, and
    the polygon each triangle came from.

    Polygons become fans around their first vertex (convex polygons, as OBJ, PLY and VTK
    writers produce); ``strips`` reads triangle strips, every other triangle flipped to keep
    the winding. All in numpy: files of millions of quads need no Python loop per polygon.
    """
    counts = np.asarray(counts, np.int64)
    if np.any(counts < 0) or int(counts.sum()) != len(ids):
        raise ValueError("the polygon sizes and the vertex list disagree (truncated?)")
    fans = np.maximum(counts - 2, 0)
    owner = np.repeat(np.arange(len(counts)), fans)
    step = np.arange(len(owner)) - np.repeat(np.cumsum(fans) - fans, fans)  # within a polygon
    base = (np.cumsum(counts) - counts)[owner]
    if strips:
        odd = step % 2
        first, second = ids[base + step + odd], ids[base + step + 1 - odd]
    else:
        first, second = ids[base], ids[base + step + 1]
    return np.stack([first, second, ids[base + step + 2]], axis=1), owner


def safe_name(name: str) -> str:
    """A segment name usable in a file name (only characters no system accepts replaced)."""
    cleaned = _UNSAFE.sub("_", name).strip().strip(".")
    return cleaned or "segment"


def rgb8(color: Sequence[float]) -> tuple[int, int, int]:
    r, g, b = (round(min(max(float(c), 0.0), 1.0) * 255) for c in color[:3])
    return r, g, b
