"""The planar-contour representation: closed polygons in LPS millimetres, per segment.

This is how RTSTRUCT (and OsiriX ROIs) store a segment: on each image plane, a set of
closed polygons whose inside is decided by the even-odd rule, so holes and islands are
separate nested contours. Open contours and points are kept as annotations of the segment
(``kind`` other than CLOSED_PLANAR): they are not part of its volume.

Conversion to and from labelmaps lives in :mod:`segio.converters.contours_to_labelmap` and
:mod:`segio.converters.labelmap_to_contours` (the 2D geometry in pixel coordinates under
them: :mod:`segio.converters.polygons`), registered for PLANAR_CONTOURS.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from segio.errors import ValidationError


class ContourKind(enum.Enum):
    """DICOM Contour Geometric Type (C.8.8.6.1)."""

    CLOSED_PLANAR = "CLOSED_PLANAR"
    OPEN_PLANAR = "OPEN_PLANAR"
    OPEN_NONPLANAR = "OPEN_NONPLANAR"
    POINT = "POINT"


@dataclass(frozen=True, eq=False)
class Contour:
    """One polygon (or open line, or point) in LPS mm; a closed one repeats no vertex."""

    points: NDArray[np.float64]
    kind: ContourKind = ContourKind.CLOSED_PLANAR
    #: SOP Instance UID of the image the contour was drawn on, when known.
    image_uid: str | None = None

    def __init__(
        self,
        points: ArrayLike,
        kind: ContourKind = ContourKind.CLOSED_PLANAR,
        image_uid: str | None = None,
    ) -> None:
        array = np.array(points, dtype=np.float64, copy=True).reshape(-1, 3)
        if not np.all(np.isfinite(array)):
            raise ValidationError("a contour has NaN or infinite coordinates")
        # One or two points are legal even when closed: readers that trace contours through
        # voxel centres write a one-voxel-wide line that way (qurit/rt-utils#87), and the
        # boundary rule of segio.converters.polygons keeps the voxels they pass through.
        if not len(array):
            raise ValidationError(f"a {kind.value} contour needs at least one point")
        array.flags.writeable = False
        object.__setattr__(self, "points", array)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "image_uid", image_uid)

    @property
    def is_closed(self) -> bool:
        return self.kind is ContourKind.CLOSED_PLANAR


@dataclass
class PlanarContours:
    """All contours of one segment; the closed ones define its volume."""

    contours: list[Contour] = field(default_factory=list)

    def __iter__(self) -> Iterator[Contour]:
        return iter(self.contours)

    def __len__(self) -> int:
        return len(self.contours)

    @property
    def closed(self) -> list[Contour]:
        return [c for c in self.contours if c.is_closed]

    @property
    def annotations(self) -> list[Contour]:
        """Open contours and points: kept and written back, never rasterised."""
        return [c for c in self.contours if not c.is_closed]

    def by_plane(
        self, normal: ArrayLike, tolerance: float = 1e-3
    ) -> list[tuple[float, list[Contour]]]:
        """Closed contours grouped by their offset along ``normal`` (ascending)."""
        unit = np.asarray(normal, dtype=np.float64)
        unit = unit / np.linalg.norm(unit)
        groups: list[tuple[float, list[Contour]]] = []
        for offset, contour in sorted(
            ((float(c.points.mean(axis=0) @ unit), c) for c in self.closed),
            key=lambda pair: pair[0],
        ):
            if groups and offset - groups[-1][0] <= tolerance:
                groups[-1][1].append(contour)
            else:
                groups.append((offset, [contour]))
        return groups


def all_points(contours: Iterable[PlanarContours]) -> NDArray[np.float64]:
    """Every vertex of every contour, as one ``(N, 3)`` array (for bounds, grids)."""
    arrays = [c.points for group in contours for c in group]
    return np.concatenate(arrays) if arrays else np.zeros((0, 3))
